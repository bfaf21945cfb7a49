package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestLookupQueueBytesBound: a peer whose lookup never answers and whose
// datagrams outgrow lookupQueueBytes ends the wait; its datagrams, the
// first one larger than the whole bound, are handled in order under its IP
// and the queue is removed.
func TestLookupQueueBytesBound(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	names := newResolver(true, slog.New(slog.DiscardHandler))
	names.wait = time.Hour
	fakeDNS(names, never, nil)

	var (
		mu  sync.Mutex
		got [][]byte
		who []string
	)
	// The first datagram is held in its handler until the rest are queued,
	// so that the queue outlives the feeding and every datagram goes in it.
	fed := make(chan struct{})
	var wg sync.WaitGroup
	l := newLookupQueues(names, &wg, func() handleFunc {
		return func(_ context.Context, p peerName, d []byte, _ bool, _ time.Time) {
			mu.Lock()
			got = append(got, d)
			who = append(who, p.name)
			first := len(got) == 1
			mu.Unlock()
			if first {
				<-fed
			}
		}
	})

	a := netip.MustParseAddr("192.0.2.7")
	// The first fills the queue alone (the second waits for room, which ends
	// the wait for the name); the other four fit in it together.
	sizes := []int{lookupQueueBytes + 1, 60 << 10, 60 << 10, 60 << 10, 60 << 10}
	want := make([][]byte, len(sizes))
	for i, n := range sizes {
		want[i] = bytes.Repeat([]byte{byte('a' + i)}, n)
	}
	ctx := context.Background()
	_, ok, e := names.get(a)
	if ok {
		t.Fatal("the peer was named before its lookup answered")
	}
	l.start(ctx, ctx, a, e, want[0], false, time.Now())
	for _, d := range want[1:] {
		// Blocks while the queue is full, until the drainer makes room.
		if !l.queueIfWaiting(a, d, false, time.Now()) {
			t.Fatal("a datagram of a peer awaiting its name was not queued")
		}
	}
	close(fed)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("the queue was not drained within %v", waitFor)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("handled %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || who[i] != "192.0.2.7" {
			t.Errorf("datagram %d: %d bytes of %q from %q, want %d bytes of %q from 192.0.2.7",
				i, len(got[i]), got[i][:1], who[i], len(want[i]), want[i][:1])
		}
	}
	if l.queued.Load() != 0 || len(l.queues) != 0 {
		t.Errorf("%d queues left, want none", len(l.queues))
	}
}
