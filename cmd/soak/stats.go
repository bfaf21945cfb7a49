package main

import (
	"slices"
	"time"
)

// Limits are the daemon's memory-bounding flags a soak run starts it with.
type Limits struct {
	HistoryBytes     int64
	ClientQueueBytes int64
	FrameBytes       int64
	MaxConnections   int64
	MaxConnsPerAddr  int64
	MaxChannels      int64
	MaxClients       int64
	IdleTimeout      time.Duration
}

// connBaseBytes is what each syslog TCP connection starts with (its 4 KiB
// read buffer), outside --frame-bytes.
const connBaseBytes = 4 << 10

// clientBaseBytes is what each stream client costs outside the queue
// budget when its writes block: its write buffer, its batch of events,
// net/http's buffers, goroutine stacks.
const clientBaseBytes = 64 << 10

// bound is the README's worst case for the daemon's resident memory:
// --history-bytes + --client-queue-bytes + --frame-bytes + 4 KiB per
// allowed syslog connection + 64 KiB per allowed stream client + the fixed
// part (an idle daemon's RSS).
func bound(l Limits, fixedBytes int64) int64 {
	return l.HistoryBytes + l.ClientQueueBytes + l.FrameBytes + connBaseBytes*l.MaxConnections +
		clientBaseBytes*l.MaxClients + fixedBytes
}

// memLimitBytes is the bound without its fixed part: what the daemon's
// budgets allow, a memory limit for the Go runtime to try.
func memLimitBytes(l Limits) int64 {
	return bound(l, 0)
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 when it is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// latencies collects durations for percentiles.
type latencies struct {
	d []time.Duration
}

// add records one duration.
func (l *latencies) add(d time.Duration) { l.d = append(l.d, d) }

// summary returns the count, p50, p99 and maximum.
func (l *latencies) summary() latencySummary {
	s := slices.Clone(l.d)
	slices.Sort(s)
	out := latencySummary{N: len(s), P50: percentile(s, 50), P99: percentile(s, 99)}
	if len(s) > 0 {
		out.Max = s[len(s)-1]
	}
	return out
}

// latencySummary is what the report says of a latency distribution.
type latencySummary struct {
	N             int
	P50, P99, Max time.Duration
}

// seqCheck follows the sequence numbers of the good lines: each should
// arrive once, in order.
type seqCheck struct {
	seen     []bool
	distinct uint64
	dups     uint64
	reorder  uint64 // arrived after a higher number
	highest  int64
}

// maxSeq bounds the numbers seqCheck keeps (an hour at 1,000 lines/s).
const maxSeq = 3_600_000

// see accounts for sequence number n (from 0); it reports whether n is new.
func (c *seqCheck) see(n int64) bool {
	if n < 0 || n >= maxSeq {
		return false
	}
	if int(n) >= len(c.seen) {
		c.seen = append(c.seen, make([]bool, int(n)+1-len(c.seen))...)
	}
	if c.seen[n] {
		c.dups++
		return false
	}
	c.seen[n] = true
	c.distinct++
	if c.distinct > 1 && n < c.highest {
		c.reorder++
	}
	c.highest = max(c.highest, n)
	return true
}

// lost counts the numbers below sent never seen.
func (c *seqCheck) lost(sent int64) int64 {
	var n int64
	for i := int64(0); i < sent; i++ {
		if int(i) >= len(c.seen) || !c.seen[i] {
			n++
		}
	}
	return n
}
