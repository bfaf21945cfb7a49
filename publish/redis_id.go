package publish

import "strconv"

// streamID is a Redis stream entry ID, "<ms>-<seq>", as two numbers so IDs
// compare without string tricks.
type streamID struct{ ms, seq uint64 }

// parseStreamID parses "<ms>-<seq>" (a bare "<ms>" means seq 0, as Redis
// takes it).
func parseStreamID(s string) (streamID, bool) {
	if s == "" {
		return streamID{}, false
	}
	ms, rest := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			ms, rest = s[:i], s[i+1:]
			break
		}
	}
	m, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return streamID{}, false
	}
	if rest == "" {
		if len(ms) != len(s) { // "123-"
			return streamID{}, false
		}
		return streamID{ms: m}, true
	}
	q, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return streamID{}, false
	}
	return streamID{ms: m, seq: q}, true
}

// less reports whether a comes before b.
func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

// compare returns -1, 0 or 1 as a is before, equal to or after b.
func (a streamID) compare(b streamID) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// isZero reports whether a is "0-0", the ID before every entry.
func (a streamID) isZero() bool { return a.ms == 0 && a.seq == 0 }

// String formats the ID as Redis does.
func (a streamID) String() string {
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(b, a.ms, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, a.seq, 10)
	return string(b)
}
