package publish

import (
	"strconv"

	"github.com/logviewer/logviewer/internal/eventid"
)

// position is an event ID as two numbers, "<a>-<b>", so IDs compare
// without string tricks. Both buses use it: a Redis stream entry or record
// ID is (ms, seq), a memory hub ID is (epoch, seq).
type position struct{ ms, seq uint64 }

// parsePosition parses "<a>-<b>", both parts decimal digits only (no sign,
// not empty) and within 64 bits.
func parsePosition(s string) (position, bool) {
	ms, seq, ok := eventid.Parse(s)
	return position{ms: ms, seq: seq}, ok
}

// parseStreamID parses a Redis stream ID: "<ms>-<seq>", or a bare "<ms>"
// meaning seq 0, as Redis takes it.
func parseStreamID(s string) (position, bool) {
	if eventid.Digits(s) {
		ms, err := strconv.ParseUint(s, 10, 64)
		return position{ms: ms}, err == nil
	}
	return parsePosition(s)
}

// less reports whether a comes before b.
func (a position) less(b position) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

// compare returns -1, 0 or 1 as a is before, equal to or after b.
func (a position) compare(b position) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// isZero reports whether a is "0-0", the ID before every entry.
func (a position) isZero() bool { return a.ms == 0 && a.seq == 0 }

// String formats the ID as Redis does.
func (a position) String() string {
	return string(a.appendTo(make([]byte, 0, 24)))
}

// appendTo appends the ID as String formats it.
func (a position) appendTo(b []byte) []byte {
	b = strconv.AppendUint(b, a.ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, a.seq, 10)
}

// resumeFrom is where a resume after since starts in one channel's
// history, on either bus, and whether the subscriber is told of a gap
// first: from the start when since is not of this life of the history
// (the bus restarted or lost its data, or since is malformed), else after
// since, with a gap when records after since are no longer kept.
func resumeFrom(since position, sameLife, lostAfter bool) (from position, gap bool) {
	if !sameLife {
		return position{}, true
	}
	return since, lostAfter
}
