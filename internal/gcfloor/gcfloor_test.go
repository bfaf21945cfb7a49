package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, live uint64
		want        int
	}{
		{64 * mib, 0, DefaultPercent},            // nothing measured yet
		{64 * mib, 40 * mib, DefaultPercent},     // above half the floor: the default
		{64 * mib, 32 * mib, DefaultPercent},     // exactly half: the default doubles it already
		{64 * mib, 16 * mib, 300},                // 16 + 3 x 16 = 64
		{64 * mib, 8 * mib, 700},                 // 8 + 7 x 8 = 64
		{64 * mib, 1 * mib, MaxPercent},          // capped
		{64 * mib, 63 * mib / 2, DefaultPercent}, // floor/live rounds down to 2: the default
	} {
		if got := percentFor(tc.floor, tc.live); got != tc.want {
			t.Errorf("percentFor(%d MiB, %.1f MiB) = %d, want %d", tc.floor/mib, float64(tc.live)/mib, got, tc.want)
		}
	}
}

// TestTunerFollowsCollections: after collections the percent is the one
// the live heap calls for, and Stop puts the old one back.
func TestTunerFollowsCollections(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	tuner := Start(1) // below any heap: the default
	defer tuner.Stop()
	if tuner.Percent() != DefaultPercent || current() != DefaultPercent {
		t.Fatalf("percent %d, want %d with a floor below the heap", tuner.Percent(), DefaultPercent)
	}
	tuner.mu.Lock()
	tuner.floor = 1 << 40 // far above any test heap: the cap, once a cycle ends
	tuner.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for tuner.Percent() != MaxPercent || current() != MaxPercent {
		if time.Now().After(deadline) {
			t.Fatalf("percent %d (in force %d), want %d after collections", tuner.Percent(), current(), MaxPercent)
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // the cleanup runs on its own goroutine
	}
	tuner.Stop()
	if got := current(); got != 100 {
		t.Errorf("after Stop the percent is %d, want the 100 in force before", got)
	}
	if Start(0).Percent() != 0 || current() != 100 {
		t.Errorf("a floor of 0 changed the percent")
	}
}

// current reads the GC percent in force.
func current() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}
