package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/internal/testsupport"
	"github.com/logviewer/logviewer/publish"
)

// tallySink counts what a parking pump writes. The pump runs on one
// goroutine at a time, but not always the same one.
type tallySink struct {
	records    atomic.Int64
	heartbeats atomic.Int64
	idles      atomic.Int64
	flushes    int // only touched by the pump: a race here is a pump on two goroutines
}

func (s *tallySink) record(*publish.Record) error            { s.records.Add(1); return nil }
func (s *tallySink) dropped(uint64, map[string]uint64) error { return nil }
func (s *tallySink) gap([]string) error                      { return nil }
func (s *tallySink) heartbeat() error                        { s.heartbeats.Add(1); return nil }
func (s *tallySink) flush() error                            { s.flushes++; return nil }
func (s *tallySink) idle()                                   { s.idles.Add(1) }

// TestPumpParkNoLostWakeup hammers parking pumps with records from
// concurrent publishers while some clients go away and some subscriptions
// close: every remaining client gets every record (the heartbeat is an hour
// away and a pump parks at once, so only the subscription wakes a parked
// pump), each stream ends
// exactly once, and idle pumps hold no goroutine.
func TestPumpParkNoLostWakeup(t *testing.T) {
	const (
		clients    = 60
		publishers = 4
		rounds     = 400
	)
	hub := publish.NewMemory(publish.MemoryConfig{History: 10})
	t.Cleanup(func() { hub.Close() })
	stop, stopNow := context.WithCancel(t.Context())
	defer stopNow()
	// A pump parks as soon as it has sent what came, and neither the
	// heartbeat nor the giving back of buffers wakes it during the test:
	// only the subscription does.
	cfg := pumpConfig{heartbeat: time.Hour, slowAfter: time.Hour, idleAfter: time.Nanosecond}

	base := runtime.NumGoroutine()
	type client struct {
		sink   tallySink
		cancel context.CancelFunc
		sub    publish.Subscription
		ends   atomic.Int32
		err    atomic.Value // error
	}
	cs := make([]*client, clients)
	var ended sync.WaitGroup
	for i := range cs {
		c := &client{}
		cs[i] = c
		sub, err := hub.Subscribe(t.Context(), "*", publish.SubscribeOptions{QueueSize: queueSize})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // a wrapper that forwards the notifier
			sub = &filteredSubscription{Subscription: sub, user: &auth.User{Name: "t", All: true}}
		}
		c.sub = sub
		ctx, cancel := context.WithCancel(stop)
		c.cancel = cancel
		ended.Add(1)
		p := newPumper(ctx, stop, sub, &c.sink, cfg, &pumpStats{})
		go p.start(func(err error) {
			c.err.Store(fmt.Errorf("end: %w", err))
			c.ends.Add(1)
			ended.Done()
		})
	}

	// Rounds of a few records from concurrent publishers, each round
	// taken by every client before the next: a wake-up lost at the end of
	// any round leaves a client short for good. Meanwhile, some clients go
	// away and some subscriptions close.
	active := func(i int) bool { return i%5 != 1 && i%5 != 2 }
	total := int64(0)
	for r := range rounds {
		var pubs sync.WaitGroup
		for g := range publishers {
			pubs.Go(func() {
				for range 1 + (r+g)%3 {
					_ = hub.Publish(t.Context(), fmt.Sprintf("ch%d", g), []byte(`{"short_message":"x"}`))
				}
			})
			total += int64(1 + (r+g)%3)
		}
		if i := r % clients; r < clients && !active(i) {
			if i%5 == 1 {
				cs[i].cancel()
			} else {
				cs[i].sub.Close()
			}
		}
		pubs.Wait()
		deadline := time.Now().Add(wait)
		for i, c := range cs {
			for active(i) && c.sink.records.Load() != total {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: client %d got %d of %d records: a lost wake-up", r, i, c.sink.records.Load(), total)
				}
				runtime.Gosched()
			}
		}
	}
	// Every record taken: the pumps park, with no goroutine each.
	testsupport.Eventually(t, wait, func() bool { return runtime.NumGoroutine() < base+clients/4 },
		"%v goroutines for %d parked clients (%d before)", func() any { return runtime.NumGoroutine() }, clients, base)

	stopNow()
	done := make(chan struct{})
	go func() { ended.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("streams not ended after stop")
	}
	for i, c := range cs {
		if n := c.ends.Load(); n != 1 {
			t.Errorf("client %d: end called %d times", i, n)
		}
		err, _ := c.err.Load().(error)
		switch i % 5 {
		case 1:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, errStopping) {
				t.Errorf("client %d (gone): %v", i, err)
			}
		case 2:
			if !errors.Is(err, publish.ErrClosed) && !errors.Is(err, errStopping) {
				t.Errorf("client %d (closed): %v", i, err)
			}
		default:
			if !errors.Is(err, errStopping) {
				t.Errorf("client %d: %v, want %v", i, err, errStopping)
			}
		}
		if c.sink.heartbeats.Load() != 0 {
			t.Errorf("client %d: heartbeat an hour early", i)
		}
	}
}

// isParked reports whether p is parked.
func isParked(p *pumper) bool {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	return p.parked
}

// TestPumpParkedHeartbeat: a parked pump wakes for its heartbeat, for
// records (and parks again once idle) and for its client going away, with
// no goroutine waiting in between.
func TestPumpParkedHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := publish.NewMemory(publish.MemoryConfig{History: 10})
		defer hub.Close()
		sub, err := hub.Subscribe(t.Context(), "*", publish.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ctx, cancel := context.WithCancel(t.Context())
		var out tallySink
		var end atomic.Value
		p := newPumper(ctx, context.Background(), sub, &out, pumpConfig{heartbeat: 15 * time.Second, slowAfter: time.Minute}, &pumpStats{})
		p.start(func(err error) { end.Store(fmt.Errorf("end: %w", err)) })
		// start returned: the pump parked.
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if n := out.heartbeats.Load(); n != 4 {
			t.Errorf("%d heartbeats in a minute, want 4", n)
		}
		if end.Load() != nil {
			t.Fatalf("stream ended: %v", end.Load())
		}
		// A record: the pump wakes and sends it, then waits on its
		// goroutine for idleAfter, when it gives its buffers back and
		// parks again.
		if err := hub.Publish(t.Context(), "app", []byte(`{"short_message":"x"}`)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if out.records.Load() != 1 || isParked(p) {
			t.Fatalf("after a record: %d sent, parked %v; want 1 sent, waiting on its goroutine", out.records.Load(), isParked(p))
		}
		time.Sleep(idleAfter)
		synctest.Wait()
		if !isParked(p) || out.idles.Load() != 1 {
			t.Fatalf("idleAfter after a record: parked %v, buffers given back %d times; want parked, once", isParked(p), out.idles.Load())
		}
		cancel()
		synctest.Wait()
		if err, _ := end.Load().(error); !errors.Is(err, context.Canceled) {
			t.Fatalf("end: %v, want %v", err, context.Canceled)
		}
	})
}
