package publish

import (
	"strconv"
	"strings"
)

// Event IDs of the memory hub are "<epoch>-<seq>": epoch is the hub's start
// time in Unix milliseconds, seq one counter for all channels starting at 1.
// The epoch tells a resume point from an earlier life of the history (the
// daemon restarted) apart from one in this life.

// formatID returns the event ID of seq in epoch.
func formatID(epoch int64, seq uint64) string {
	var b [40]byte
	out := strconv.AppendInt(b[:0], epoch, 10)
	out = append(out, '-')
	out = strconv.AppendUint(out, seq, 10)
	return string(out)
}

// parseID splits an event ID made by formatID. ok is false for anything
// else: no '-', a part empty, not decimal, signs, or out of range.
func parseID(id string) (epoch int64, seq uint64, ok bool) {
	e, s, found := strings.Cut(id, "-")
	if !found || !isDigits(e) || !isDigits(s) {
		return 0, 0, false
	}
	epoch, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	seq, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return epoch, seq, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
