package publish

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestWriterNextPacing: when the writer sends a partial batch. A lone
// record and a low rate go when the first record is the linger time (1 ms)
// old, also when the writer was busy sending when it came; at a high rate
// a batch waits for its full size, at most maxLinger (4 ms), so that a
// shard with half the records gets half the flushes; a full batch goes at
// once.
func TestWriterNextPacing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perTick   int           // records every 100 µs, from 50 µs after the first (negative: every 4 ms)
		busy      time.Duration // the writer looks this long after the first record
		wantAfter time.Duration
		wantN     int
	}{
		{"lone record", 0, 0, time.Millisecond, 1},
		{"lone record while busy", 0, 600 * time.Microsecond, time.Millisecond, 1},
		{"lone record after a long send", 0, 3 * time.Millisecond, 3 * time.Millisecond, 1},
		{"10 a millisecond", 1, 0, time.Millisecond, 11},
		{"100 a millisecond", 10, 0, 4 * time.Millisecond, 1 + 40*10},
		{"300 a millisecond", 30, 0, 1750 * time.Microsecond, defaultBatchSize},
		{"10 a millisecond in bursts of 40", -40, 0, time.Millisecond, 41},
		{"100 a millisecond while busy", 10, 2 * time.Millisecond, 4 * time.Millisecond, 1 + 40*10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := &redisWriter{
					buf:       newPubBuffer(1<<30, defaultBatchSize),
					wake:      make(chan struct{}, 1),
					closing:   make(chan struct{}),
					linger:    defaultLinger,
					maxLinger: defaultMaxLinger,
					lastTake:  time.Now(), // as if a batch had just gone
				}
				if tc.perTick < 0 {
					// The batch of the burst before went 3 ms ago.
					w.lastTake = w.lastTake.Add(-3 * time.Millisecond)
				}
				push := func() {
					if _, wake := w.buf.push("ch", []byte(`{}`)); wake {
						select {
						case w.wake <- struct{}{}:
						default:
						}
					}
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var first time.Time
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(100 * time.Microsecond) // the writer waits on an empty queue
					first = time.Now()
					push()
					// Off the writer's timer instants: no tie to order.
					time.Sleep(50 * time.Microsecond)
					for ctx.Err() == nil && tc.perTick > 0 {
						for range tc.perTick {
							push()
						}
						time.Sleep(100 * time.Microsecond)
					}
					for ctx.Err() == nil && tc.perTick < 0 {
						for range -tc.perTick {
							push()
						}
						time.Sleep(4 * time.Millisecond)
					}
				}()
				timers := newWriterTimers()
				defer timers.stop()
				if tc.busy > 0 {
					time.Sleep(100*time.Microsecond + tc.busy)
				}
				var b *pendingBatch
				for b == nil {
					var ok bool
					if b, _, ok = w.next(ctx, timers); !ok {
						t.Fatal("next: stopped")
					}
				}
				took := time.Since(first)
				cancel()
				<-done
				if n, _ := b.live(); took != tc.wantAfter || n != tc.wantN {
					t.Errorf("batch of %d after %v; want %d after %v", n, took, tc.wantN, tc.wantAfter)
				}
			})
		})
	}
}
