package main

import "math/bits"

// maxSeq bounds the sequence numbers a tracker accepts, so a corrupt or
// foreign line cannot make it allocate a huge bitmap.
const maxSeq = 1 << 32

// seqTracker accounts for the sequences of one subscriber: one bitmap of
// seen sequence numbers per load connection. It tells lines seen once,
// duplicates, and lines that arrived after a later one (reordered).
type seqTracker struct {
	conns    [][]uint64 // conns[c] bit s: sequence s of connection c seen
	highest  []uint64   // highest sequence + 1 seen per connection
	distinct uint64
	dups     uint64
	reorder  uint64
	rejected uint64 // marks out of range
}

// see records sequence seq of connection conn (1-based) and reports
// whether it was new.
func (t *seqTracker) see(conn int, seq uint64) bool {
	if conn < 1 || seq >= maxSeq {
		t.rejected++
		return false
	}
	c := conn - 1
	for len(t.conns) <= c {
		t.conns = append(t.conns, nil)
		t.highest = append(t.highest, 0)
	}
	w := int(seq / 64)
	bm := t.conns[c]
	if w >= len(bm) {
		n := max(w+1, 2*len(bm), 16)
		nb := make([]uint64, n)
		copy(nb, bm)
		bm = nb
		t.conns[c] = bm
	}
	bit := uint64(1) << (seq % 64)
	if bm[w]&bit != 0 {
		t.dups++
		return false
	}
	bm[w] |= bit
	t.distinct++
	if seq+1 < t.highest[c] {
		t.reorder++
	} else {
		t.highest[c] = seq + 1
	}
	return true
}

// lossReport is what is missing from the expected sequences.
type lossReport struct {
	Lost uint64 // sequences expected and not seen
	Gaps uint64 // maximal runs of missing sequences
}

// loss compares what was seen with what was sent: sent[c] lines on
// connection c+1, sequences 0..sent[c]-1. When sent is nil (receiving
// only) each connection is taken to have sent up to its highest sequence.
func (t *seqTracker) loss(sent []uint64) lossReport {
	var r lossReport
	n := max(len(sent), len(t.conns))
	for c := 0; c < n; c++ {
		var want uint64
		switch {
		case sent != nil && c < len(sent):
			want = sent[c]
		case sent == nil && c < len(t.highest):
			want = t.highest[c]
		}
		var bm []uint64
		if c < len(t.conns) {
			bm = t.conns[c]
		}
		seen, gaps := countRange(bm, want)
		r.Lost += want - seen
		r.Gaps += gaps
	}
	return r
}

// countRange counts the set bits of bm below n and the runs of clear bits.
func countRange(bm []uint64, n uint64) (seen, gaps uint64) {
	prevSet := true // a run of misses starting at 0 counts as a gap
	for w := uint64(0); w*64 < n; w++ {
		var word uint64
		if int(w) < len(bm) {
			word = bm[w]
		}
		valid := ^uint64(0)
		if rest := n - w*64; rest < 64 {
			valid = uint64(1)<<rest - 1
		}
		word &= valid
		seen += uint64(bits.OnesCount64(word))
		if word == valid {
			prevSet = true
			continue
		}
		for b := uint64(0); b < 64 && w*64+b < n; b++ {
			set := word&(1<<b) != 0
			if !set && prevSet {
				gaps++
			}
			prevSet = set
		}
	}
	return seen, gaps
}
