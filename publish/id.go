package publish

import "math"

// Event IDs of the memory hub are "<epoch>-<seq>": epoch is the hub's start
// time in Unix milliseconds, seq one counter for all channels starting at 1.
// The epoch tells a resume point from an earlier life of the history (the
// daemon restarted) apart from one in this life. They are positions, as
// Redis IDs are.

// parseID splits a memory hub event ID, "<epoch>-<seq>". ok is false for anything
// else: no '-', a part empty, not decimal, signs, or out of range.
func parseID(id string) (epoch int64, seq uint64, ok bool) {
	p, ok := parsePosition(id)
	if !ok || p.ms > math.MaxInt64 {
		return 0, 0, false
	}
	return int64(p.ms), p.seq, true
}
