package testsupport

import "fmt"

// GapMark stands for a gap notice in the sequences CheckOutageSequence reads.
const GapMark = -1

// CheckOutageSequence checks what a subscriber received across a Redis
// outage in which Redis was killed without persistence: seq holds the
// numbers of the records received, in order, with GapMark where a gap
// notice came. Records numbered 0..total-1 were published; Redis was gone
// once stoppedAt of them had been.
//
// Every record published after the kill was held by the ingest node and
// must arrive. A record Redis acknowledged just before it was killed can be
// lost with it (it was in no stream that survived, and its pub/sub message
// may never have left Redis); such a hole is allowed only within slack
// records before the kill, and only with a gap notice between the records
// around it, so that a client is never silently handed a hole. Nothing may
// arrive twice or out of order.
func CheckOutageSequence(seq []int, total, stoppedAt, slack int) error {
	next, gapSince := 0, false // next number due; a gap notice since the last record
	for _, n := range seq {
		if n == GapMark {
			gapSince = true
			continue
		}
		if n < next {
			return fmt.Errorf("record %d arrived after %d: repeated or out of order", n, next-1)
		}
		if n >= total {
			return fmt.Errorf("record %d was never published (total %d)", n, total)
		}
		if n > next {
			if err := checkHole(next, n, stoppedAt, slack, gapSince); err != nil {
				return err
			}
		}
		next, gapSince = n+1, false
	}
	if next < total {
		return checkHole(next, total, stoppedAt, slack, gapSince)
	}
	return nil
}

// checkHole checks that records from..to-1, which never arrived, may be lost.
func checkHole(from, to, stoppedAt, slack int, gapNotice bool) error {
	switch {
	case to > stoppedAt:
		return fmt.Errorf("records %d..%d lost, some published after Redis was stopped at %d", from, to-1, stoppedAt)
	case from < stoppedAt-slack:
		return fmt.Errorf("records %d..%d lost, earlier than the %d before Redis was stopped at %d", from, to-1, slack, stoppedAt)
	case !gapNotice:
		return fmt.Errorf("records %d..%d lost without a gap notice", from, to-1)
	}
	return nil
}
