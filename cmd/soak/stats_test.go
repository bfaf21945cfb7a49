package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 3", ms(1, 2, 300), 99, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestBound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		l     Limits
		fixed int64
		want  int64
	}{
		{"zero", Limits{}, 0, 0},
		{"fixed only", Limits{}, 20 << 20, 20 << 20},
		{"soak limits", Limits{HistoryBytes: 64 << 20, ClientQueueBytes: 32 << 20, FrameBytes: 16 << 20, MaxConnections: 2000, MaxChannels: 9},
			10 << 20, (64+32+16+10)<<20 + 2000*4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bound(tc.l, tc.fixed); got != tc.want {
				t.Errorf("bound = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSeqCheck(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		seqs                        []int64
		sent                        int64
		distinct, dups, reorder, lo uint64
	}{
		{"in order", []int64{0, 1, 2}, 3, 3, 0, 0, 0},
		{"duplicate", []int64{0, 1, 1, 2}, 3, 3, 1, 0, 0},
		{"reordered", []int64{0, 2, 1}, 3, 3, 0, 1, 0},
		{"lost tail and middle", []int64{0, 2}, 5, 2, 0, 0, 3},
		{"out of range ignored", []int64{-1, maxSeq}, 0, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c seqCheck
			for _, s := range tc.seqs {
				c.see(s)
			}
			if c.distinct != tc.distinct || c.dups != tc.dups || c.reorder != tc.reorder || uint64(c.lost(tc.sent)) != tc.lo {
				t.Errorf("distinct %d dups %d reorder %d lost %d, want %d %d %d %d",
					c.distinct, c.dups, c.reorder, c.lost(tc.sent), tc.distinct, tc.dups, tc.reorder, tc.lo)
			}
		})
	}
}
