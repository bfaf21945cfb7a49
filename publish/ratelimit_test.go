package publish

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimited: a hot-path log line runs at most once per logEvery,
// told how many calls it skipped, and add sums counts between runs. The
// clock is synctest's: real time is not the point.
func TestRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r rateLimited
		var runs []uint64
		do := func() { r.do(func(skipped uint64) { runs = append(runs, skipped) }) }
		do() // first: runs
		do() // skipped
		do() // skipped
		time.Sleep(logEvery)
		do() // runs, 2 skipped
		time.Sleep(logEvery / 2)
		do() // skipped
		if want := []uint64{0, 2}; !slices.Equal(runs, want) {
			t.Fatalf("runs %v, want %v", runs, want)
		}

		var totals []uint64
		var a rateLimited
		add := func(n uint64) { a.add(n, func(total uint64) { totals = append(totals, total) }) }
		add(0) // nothing pending: nothing to say
		add(3) // runs with 3
		add(4) // within logEvery: kept
		time.Sleep(logEvery)
		add(0) // runs with the 4 kept
		add(0)
		if want := []uint64{3, 4}; !slices.Equal(totals, want) {
			t.Fatalf("totals %v, want %v", totals, want)
		}
	})
}
