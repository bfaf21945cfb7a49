package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
)

const (
	udpReadBuffer = 8 << 20 // socket receive buffer asked for
	// udpMaxDatagram holds any UDP payload (65,507 bytes over IPv4).
	udpMaxDatagram = 64 << 10
	// A peer whose name is being looked up has its datagrams queued, within
	// these bounds; a full queue stops the wait and the IP stands in.
	udpQueueLen   = 256
	udpQueueBytes = 256 << 10
)

// udpReader reads datagrams, one message each. Datagrams from a peer whose
// name is known are handled at once; those from a peer being looked up wait,
// in order, in that peer's queue while other peers' datagrams go on. A
// queue is drained by a goroutine of its own once the name (or the IP, after
// the wait) is known.
type udpReader struct {
	s       *Server
	h       *handler
	readErr prometheus.Counter

	mu     sync.Mutex
	space  *sync.Cond // signalled when a queue shrinks
	queues map[netip.Addr]*udpQueue
}

// udpQueue holds the datagrams of one peer while its name is looked up.
type udpQueue struct {
	items   []udpItem
	bytes   int
	hurry   chan struct{} // closed when the queue is full: stop waiting for the name
	hurried bool
	waiting int // the reader waits for room in this queue
}

type udpItem struct {
	data      []byte
	truncated bool
	received  time.Time
}

func newUDPReader(s *Server) *udpReader {
	u := &udpReader{
		s:       s,
		h:       s.newHandler("udp"),
		readErr: s.met.Dropped.WithLabelValues(metrics.DropUDPBuffer),
		queues:  make(map[netip.Addr]*udpQueue),
	}
	u.space = sync.NewCond(&u.mu)
	return u
}

// run reads until shutdown stops the reads. A read error costs the datagram
// (counted, logged rate-limited), never the reader.
func (u *udpReader) run(ctx, pubCtx context.Context) {
	s := u.s
	buf := make([]byte, udpMaxDatagram)
	var backoff time.Duration
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			u.readErr.Inc()
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			if n, ok := s.readLog.allow(); ok {
				s.log.Warn("udp read failed", slog.Any("error", err), slog.Int64("suppressed", n))
			}
			time.Sleep(backoff) // an error that repeats must not spin
			continue
		}
		backoff = 0
		u.h.bytes.Add(float64(n))
		d := stripFrameEnd(buf[:n])
		if len(d) == 0 {
			continue
		}
		truncated := false
		if len(d) > s.cfg.MaxMessageSize {
			d, truncated = d[:s.cfg.MaxMessageSize], true
		}
		u.dispatch(ctx, pubCtx, from.Addr().Unmap(), d, truncated, time.Now())
	}
}

// dispatch handles a datagram now, or queues it behind its peer's lookup.
func (u *udpReader) dispatch(ctx, pubCtx context.Context, a netip.Addr, d []byte, truncated bool, received time.Time) {
	u.mu.Lock()
	if q := u.queues[a]; q != nil {
		u.enqueue(q, d, truncated, received) // keeps this peer's order
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()

	peer, ok, e := u.s.names.get(a)
	if ok {
		u.h.handle(pubCtx, peer, d, truncated, received)
		return
	}
	q := &udpQueue{hurry: make(chan struct{})}
	u.mu.Lock()
	u.queues[a] = q
	u.enqueue(q, d, truncated, received)
	u.mu.Unlock()
	u.s.wg.Go(func() { u.drain(ctx, pubCtx, a, q, e) })
}

// enqueue appends a copy of d to q, waiting for room when q is full (after
// telling its drainer to stop waiting for the name). u.mu is held.
func (u *udpReader) enqueue(q *udpQueue, d []byte, truncated bool, received time.Time) {
	for len(q.items) > 0 && (len(q.items) >= udpQueueLen || q.bytes+len(d) > udpQueueBytes) {
		if !q.hurried {
			q.hurried = true
			close(q.hurry)
		}
		q.waiting++
		u.space.Wait()
		q.waiting--
	}
	q.items = append(q.items, udpItem{data: append([]byte(nil), d...), truncated: truncated, received: received})
	q.bytes += len(d)
	u.space.Broadcast() // the drainer may wait for this item
}

// drain waits for the peer's name (or the IP when the wait ends) and handles
// the queued datagrams in order, then removes the queue.
func (u *udpReader) drain(ctx, pubCtx context.Context, a netip.Addr, q *udpQueue, e *dnsEntry) {
	peer := u.s.names.await(ctx, a, e, q.hurry)
	h := u.s.newHandler("udp")
	for {
		u.mu.Lock()
		for len(q.items) == 0 && q.waiting > 0 {
			u.space.Wait() // the reader is about to add to this queue
		}
		if len(q.items) == 0 {
			delete(u.queues, a)
			u.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items[0] = udpItem{}
		q.items = q.items[1:]
		q.bytes -= len(it.data)
		u.space.Broadcast()
		u.mu.Unlock()
		h.handle(pubCtx, peer, it.data, it.truncated, it.received)
	}
}
