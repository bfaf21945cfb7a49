package ingest

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// A peer whose name is being looked up has its datagrams queued, within
// these bounds (the first datagram is always taken, whatever its size); a
// full queue stops the wait and the IP stands in. At most dnsMaxInFlight
// peers have a queue at once.
const (
	lookupQueueLen   = 256
	lookupQueueBytes = 256 << 10
)

// lookupQueues holds, per peer, the datagrams that arrived while the peer's
// name was being looked up, so that one slow lookup neither stalls other
// peers nor reorders its own peer's datagrams. Each queue is bounded in
// datagrams and bytes (lookupQueueLen, lookupQueueBytes); a full queue stops the wait (the IP stands in) and
// makes its feeder wait for room. The UDP syslog reader and the GELF UDP
// reader each have one.
type lookupQueues struct {
	names *resolver
	wg    *sync.WaitGroup // tracks the drainers
	// newHandle gives each drainer its own handling function: handlers
	// keep per-goroutine state.
	newHandle func() handleFunc

	// queued is len(queues). Only the feeding goroutine adds queues, so
	// when it reads 0 no peer has one and it needs no lock to know it.
	queued atomic.Int32

	mu     sync.Mutex
	space  *sync.Cond // signalled when a queue shrinks or grows
	queues map[netip.Addr]*lookupQueue
}

// handleFunc handles one datagram of a named peer.
type handleFunc func(ctx context.Context, p peerName, d []byte, truncated bool, received time.Time)

// lookupQueue holds the datagrams of one peer while its name is looked up.
type lookupQueue struct {
	items   []queuedDatagram
	bytes   int
	hurry   chan struct{} // closed when the queue is full: stop waiting for the name
	hurried bool
	waiting int // the feeding goroutine waits for room in this queue
}

type queuedDatagram struct {
	data      []byte
	truncated bool
	received  time.Time
}

func newLookupQueues(names *resolver, wg *sync.WaitGroup, newHandle func() handleFunc) *lookupQueues {
	l := &lookupQueues{
		names: names, wg: wg, newHandle: newHandle,
		queues: make(map[netip.Addr]*lookupQueue),
	}
	l.space = sync.NewCond(&l.mu)
	return l
}

// queueIfWaiting queues a copy of d and reports true when a's name is still
// being looked up: its datagram must follow the ones already queued.
func (l *lookupQueues) queueIfWaiting(a netip.Addr, d []byte, truncated bool, received time.Time) bool {
	if l.queued.Load() == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queues[a]
	if q == nil {
		return false
	}
	l.enqueue(q, d, truncated, received)
	return true
}

// start queues a copy of d as the first datagram of a, whose name e is
// being looked up, and starts the goroutine that handles the queue once the
// name is known.
func (l *lookupQueues) start(ctx, pubCtx context.Context, a netip.Addr, e *dnsEntry, d []byte, truncated bool, received time.Time) {
	q := &lookupQueue{hurry: make(chan struct{})}
	l.mu.Lock()
	l.queues[a] = q
	l.queued.Add(1)
	l.enqueue(q, d, truncated, received)
	l.mu.Unlock()
	l.wg.Go(func() { l.drain(ctx, pubCtx, a, q, e) })
}

// enqueue appends a copy of d to q, waiting for room when q is full (after
// telling its drainer to stop waiting for the name). l.mu is held.
func (l *lookupQueues) enqueue(q *lookupQueue, d []byte, truncated bool, received time.Time) {
	for len(q.items) > 0 && (len(q.items) >= lookupQueueLen || q.bytes+len(d) > lookupQueueBytes) {
		if !q.hurried {
			q.hurried = true
			close(q.hurry)
		}
		q.waiting++
		l.space.Wait()
		q.waiting--
	}
	q.items = append(q.items, queuedDatagram{data: append([]byte(nil), d...), truncated: truncated, received: received})
	q.bytes += len(d)
	l.space.Broadcast() // the drainer may wait for this item
}

// drain waits for the peer's name (or the IP when the wait ends) and handles
// the queued datagrams in order, then removes the queue.
func (l *lookupQueues) drain(ctx, pubCtx context.Context, a netip.Addr, q *lookupQueue, e *dnsEntry) {
	peer := l.names.await(ctx, a, e, q.hurry)
	handle := l.newHandle()
	for {
		l.mu.Lock()
		for len(q.items) == 0 && q.waiting > 0 {
			l.space.Wait() // the feeding goroutine is about to add to this queue
		}
		if len(q.items) == 0 {
			delete(l.queues, a)
			l.queued.Add(-1)
			l.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items[0] = queuedDatagram{}
		q.items = q.items[1:]
		q.bytes -= len(it.data)
		l.space.Broadcast()
		l.mu.Unlock()
		handle(pubCtx, peer, it.data, it.truncated, it.received)
	}
}
