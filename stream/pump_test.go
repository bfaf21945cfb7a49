package stream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/logviewer/logviewer/publish"
)

// slowSink takes everything but each flush takes a while: a reader that
// keeps up with a trickle, not with a flood.
type slowSink struct{ delay time.Duration }

func (slowSink) record(*publish.Record) error            { return nil }
func (slowSink) dropped(uint64, map[string]uint64) error { return nil }
func (slowSink) gap([]string) error                      { return nil }
func (slowSink) heartbeat() error                        { return nil }
func (slowSink) idle()                                   {}
func (s slowSink) flush() error {
	time.Sleep(s.delay)
	return nil
}

// TestPumpEvictsClientLosingRecords: a client that reads, but too slowly to
// ever stop losing records, is cut off with errSlow after slowAfter.
func TestPumpEvictsClientLosingRecords(t *testing.T) {
	hub := publish.NewMemory(publish.MemoryConfig{History: 10})
	defer hub.Close()
	sub, err := hub.Subscribe(t.Context(), "*", publish.SubscribeOptions{QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() { // a flood, until the test ends
		for ctx.Err() == nil {
			for range 100 {
				_ = hub.Publish(ctx, "app", []byte(`{"short_message":"x"}`))
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var st pumpStats
	start := time.Now()
	err = pump(ctx, context.Background(), sub, slowSink{delay: 5 * time.Millisecond}, time.Minute, 100*time.Millisecond, &st)
	if !errors.Is(err, errSlow) {
		t.Fatalf("pump ended with %v after %v, want errSlow", err, time.Since(start))
	}
	if st.dropped == 0 {
		t.Fatalf("no records were lost, yet the client was evicted")
	}
}

// idleSink counts idle calls: when the pump gives its buffers back.
type idleSink struct {
	slowSink
	idled chan struct{}
}

func (s idleSink) idle() {
	select {
	case s.idled <- struct{}{}:
	default:
	}
}

// TestPumpGivesBuffersBackWhenIdle: a client that gets a record and then
// nothing for idleAfter has its batch buffers given back while it waits.
func TestPumpGivesBuffersBackWhenIdle(t *testing.T) {
	hub := publish.NewMemory(publish.MemoryConfig{History: 10})
	defer hub.Close()
	sub, err := hub.Subscribe(t.Context(), "*", publish.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	_ = hub.Publish(t.Context(), "app", []byte(`{"short_message":"x"}`))
	ctx, cancel := context.WithCancel(t.Context())
	out := idleSink{idled: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- pump(ctx, context.Background(), sub, out, time.Minute, time.Minute, &pumpStats{}) }()
	select {
	case <-out.idled:
	case <-time.After(idleAfter + 10*time.Second):
		t.Fatal("the pump never gave its buffers back")
	}
	cancel()
	<-done
}
