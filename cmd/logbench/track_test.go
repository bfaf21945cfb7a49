package main

import "testing"

func TestSeqTracker(t *testing.T) {
	type seen struct {
		conn int
		seq  uint64
	}
	seqs := func(conn int, from, to uint64) []seen {
		var out []seen
		for s := from; s < to; s++ {
			out = append(out, seen{conn, s})
		}
		return out
	}
	cat := func(parts ...[]seen) []seen {
		var out []seen
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name                    string
		seen                    []seen
		sent                    []uint64 // nil: receive-only
		distinct, dups, reorder uint64
		lost, gaps, rejected    uint64
	}{
		{name: "nothing sent", sent: []uint64{0}},
		{name: "all in order", seen: seqs(1, 0, 1000), sent: []uint64{1000}, distinct: 1000},
		{name: "nothing received", sent: []uint64{10, 5}, lost: 15, gaps: 2},
		{name: "two connections interleaved", seen: cat(seqs(1, 0, 50), seqs(2, 0, 70), seqs(1, 50, 100)),
			sent: []uint64{100, 70}, distinct: 170},
		{name: "hole in the middle", seen: cat(seqs(1, 0, 10), seqs(1, 20, 30)), sent: []uint64{30},
			distinct: 20, lost: 10, gaps: 1},
		{name: "lost head and tail", seen: seqs(1, 5, 10), sent: []uint64{15}, distinct: 5, lost: 10, gaps: 2},
		{name: "holes across words", seen: cat(seqs(1, 0, 63), seqs(1, 64, 127), seqs(1, 129, 300)),
			sent: []uint64{300}, distinct: 297, lost: 3, gaps: 2},
		{name: "duplicates", seen: cat(seqs(1, 0, 10), seqs(1, 3, 6)), sent: []uint64{10}, distinct: 10, dups: 3},
		{name: "reordered", seen: []seen{{1, 0}, {1, 2}, {1, 1}, {1, 3}}, sent: []uint64{4}, distinct: 4, reorder: 1},
		{name: "one connection silent", seen: seqs(2, 0, 10), sent: []uint64{10, 10}, distinct: 10, lost: 10, gaps: 1},
		{name: "receive only uses highest", seen: cat(seqs(1, 0, 5), seqs(1, 8, 10)), distinct: 7, lost: 3, gaps: 1},
		{name: "rejected marks", seen: []seen{{0, 1}, {1, maxSeq}, {-1, 2}}, sent: []uint64{0}, rejected: 3},
		{name: "more received than sent counts no loss", seen: seqs(1, 0, 12), sent: []uint64{10}, distinct: 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for _, s := range tc.seen {
				tr.see(s.conn, s.seq)
			}
			if tr.distinct != tc.distinct || tr.dups != tc.dups || tr.reorder != tc.reorder || tr.rejected != tc.rejected {
				t.Errorf("distinct %d dups %d reorder %d rejected %d; want %d %d %d %d",
					tr.distinct, tr.dups, tr.reorder, tr.rejected, tc.distinct, tc.dups, tc.reorder, tc.rejected)
			}
			l := tr.loss(tc.sent)
			if l.Lost != tc.lost || l.Gaps != tc.gaps {
				t.Errorf("loss = %+v, want lost %d gaps %d", l, tc.lost, tc.gaps)
			}
		})
	}
}

func TestSeqTrackerSeeDoesNotAllocateInRange(t *testing.T) {
	var tr seqTracker
	tr.see(1, 100000)
	seq := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		tr.see(1, seq)
		seq++
	})
	if allocs != 0 {
		t.Errorf("see allocates %v times per line", allocs)
	}
}
