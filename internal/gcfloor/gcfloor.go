// Package gcfloor keeps the garbage collector from running more often than
// a small heap calls for. With the default GOGC of 100 the collector runs
// each time the program allocated as much as is live: a daemon whose live
// heap is a few MiB of history and which allocates a record per line then
// collects a hundred times a second under load, and each cycle stops and
// scans every goroutine. Below a floor, gcfloor raises the GC percent so
// that the heap may grow to the floor before the next cycle; above it,
// the percent is the default. The runtime's memory limit still bounds the
// heap, so the worst case a program states does not change.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MaxPercent bounds the GC percent Tuner sets: with a tiny live heap the
// floor alone would ask for thousands.
const MaxPercent = 1000

// DefaultPercent is the GC percent at or above the floor (GOGC's default).
const DefaultPercent = 100

// liveHeap is the runtime metric of the heap marked live by the last cycle.
const liveHeap = "/gc/heap/live:bytes"

// Tuner sets the GC percent after every collection from the live heap it
// left. Start it with Start; Stop restores the percent in force before.
type Tuner struct {
	floor  uint64
	sample []metrics.Sample

	mu      sync.Mutex
	stopped bool
	percent int // set last
	before  int // in force before Start
}

// Start begins tuning toward floor bytes of heap and returns the Tuner.
// A floor of zero or less tunes nothing.
func Start(floor int64) *Tuner {
	t := &Tuner{sample: []metrics.Sample{{Name: liveHeap}}}
	if floor <= 0 {
		t.stopped = true
		return t
	}
	t.floor = uint64(floor)
	t.percent = t.target()
	t.before = debug.SetGCPercent(t.percent)
	t.arm()
	return t
}

// Percent returns the GC percent the Tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// Stop ends the tuning and puts back the GC percent in force before Start.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.before)
}

// gcSignal is allocated for its cleanup, which runs once a collection
// found it unreachable: after every cycle, as each arms the next.
type gcSignal struct{ _ [16]byte }

// arm attaches the tuning to the next collection.
func (t *Tuner) arm() {
	runtime.AddCleanup(new(gcSignal), func(t *Tuner) { t.afterGC() }, t)
}

// afterGC sets the percent for the live heap the last cycle left.
func (t *Tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p := t.target(); p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	t.arm()
}

// target is the GC percent that lets the heap grow to the floor from the
// live heap: floor/live - 1, in percent, between DefaultPercent and
// MaxPercent.
func (t *Tuner) target() int {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return DefaultPercent
	}
	return percentFor(t.floor, t.sample[0].Value.Uint64())
}

// percentFor is target's arithmetic.
func percentFor(floor, live uint64) int {
	if live == 0 || live >= floor/2 {
		return DefaultPercent
	}
	p := (floor/live - 1) * 100
	return int(min(max(p, DefaultPercent), MaxPercent))
}
