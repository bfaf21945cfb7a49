package stream

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
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

// subscribeAll subscribes to "*" on a new memory hub; both end with the test.
func subscribeAll(t *testing.T, opts publish.SubscribeOptions) (*publish.Memory, publish.Subscription) {
	t.Helper()
	hub := publish.NewMemory(publish.MemoryConfig{History: 10})
	t.Cleanup(func() { hub.Close() })
	sub, err := hub.Subscribe(t.Context(), "*", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return hub, sub
}

// TestPumpEvictsClientLosingRecords: a client that reads, but too slowly to
// ever stop losing records, is cut off with errSlow after slowAfter.
func TestPumpEvictsClientLosingRecords(t *testing.T) {
	hub, sub := subscribeAll(t, publish.SubscribeOptions{QueueSize: 4})
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
	err := pump(ctx, context.Background(), sub, slowSink{delay: 5 * time.Millisecond}, pumpConfig{heartbeat: time.Minute, slowAfter: 100 * time.Millisecond}, &st)
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
	hub, sub := subscribeAll(t, publish.SubscribeOptions{})
	_ = hub.Publish(t.Context(), "app", []byte(`{"short_message":"x"}`))
	ctx, cancel := context.WithCancel(t.Context())
	out := idleSink{idled: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- pump(ctx, context.Background(), sub, out, pumpConfig{heartbeat: time.Minute, slowAfter: time.Minute}, &pumpStats{})
	}()
	select {
	case <-out.idled:
	case <-time.After(idleAfter + 10*time.Second):
		t.Fatal("the pump never gave its buffers back")
	}
	cancel()
	<-done
}

// countingSink counts records and flushes, and hands each flush's record
// count to flushed.
type countingSink struct {
	slowSink
	pending int
	flushed chan int
}

func (s *countingSink) record(*publish.Record) error { s.pending++; return nil }
func (s *countingSink) flush() error {
	if s.pending > 0 {
		s.flushed <- s.pending
		s.pending = 0
	}
	return nil
}

// TestPumpPacesFlushes: records that follow a flush within the pace leave
// together in the next flush; the first record after a quiet spell leaves
// alone, without waiting for the pace.
func TestPumpPacesFlushes(t *testing.T) {
	hub, sub := subscribeAll(t, publish.SubscribeOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &countingSink{flushed: make(chan int, 100)}
	// A pace far longer than the test's publishing takes: the ten records
	// published after the first flush can only leave together.
	const pace = time.Hour
	paceOn := make(chan struct{})
	cfg := pumpConfig{heartbeat: 2 * time.Hour, slowAfter: time.Minute, pace: func() time.Duration {
		select {
		case <-paceOn:
			return pace
		default:
			return 0
		}
	}}
	done := make(chan error, 1)
	go func() { done <- pump(ctx, context.Background(), sub, out, cfg, &pumpStats{}) }()
	publishOne := func() {
		if err := hub.Publish(t.Context(), "app", []byte(`{"short_message":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	publishOne()
	if n := <-out.flushed; n != 1 {
		t.Fatalf("first flush had %d records, want 1 (it must not wait)", n)
	}
	close(paceOn)
	for range 10 {
		publishOne()
	}
	select {
	case n := <-out.flushed:
		t.Fatalf("a flush of %d records within the pace", n)
	case <-time.After(200 * time.Millisecond):
	}
	cancel() // ends the pace's wait: what waited is written
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("pump: %v", err)
	}
	total := 0
	for len(out.flushed) > 0 {
		total += <-out.flushed
	}
	if total != 10 {
		t.Fatalf("%d records flushed after the pace was cut, want the 10 that waited", total)
	}
}

func TestCloseReason(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	write := func(err error) error {
		return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", err)}
	}
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"slow", live, errSlow, metrics.CloseSlow},
		{"write timeout", live, &net.OpError{Op: "write", Err: os.ErrDeadlineExceeded}, metrics.CloseSlow},
		{"stopping", live, errStopping, metrics.CloseStopping},
		{"bus closed", live, publish.ErrClosed, metrics.CloseBusClosed},
		{"reset while writing", live, write(syscall.ECONNRESET), metrics.CloseClientGone},
		{"broken pipe", live, write(syscall.EPIPE), metrics.CloseClientGone},
		{"peer went away", gone, context.Canceled, metrics.CloseClientGone},
		{"other error", live, errors.New("boom"), metrics.CloseError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := closeReason(tc.ctx, tc.err); got != tc.want {
				t.Errorf("closeReason(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}
