package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/ratelog"
)

// connTable tracks the open TCP connections of a receiver: so that shutdown
// can stop their reads (a read deadline of now), so that they stay within
// their bounds (in total and per peer address), and so that the silent ones
// can be closed.
type connTable struct {
	max, perAddr int           // bounds; <= 0: none
	idle         time.Duration // close after this long without a complete message; <= 0: never

	mu       sync.Mutex
	stopping bool
	conns    map[net.Conn]*connState
	byAddr   map[netip.Addr]int
}

// connState is what the table keeps of an open connection.
type connState struct {
	addr     netip.Addr
	lastRead atomic.Int64 // Unix nanoseconds of the last message (or of the accept)
}

// touch records that the connection just delivered bytes.
func (st *connState) touch(t time.Time) { st.lastRead.Store(t.UnixNano()) }

// newConnTable returns a table of at most max connections, perAddr from one
// address, closed after idle without a message. Bounds left unset take
// their defaults: DefaultMaxConnections,
// DefaultMaxConnectionsPerAddr, DefaultIdleTimeout (a negative idle means none).
func newConnTable(max, perAddr int, idle time.Duration) *connTable {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	if perAddr <= 0 {
		perAddr = DefaultMaxConnectionsPerAddr
	}
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	return &connTable{max: max, perAddr: perAddr, idle: idle,
		conns: make(map[net.Conn]*connState), byAddr: make(map[netip.Addr]int)}
}

// Reasons track refuses a connection for.
const (
	refuseStopping = "stopping" // shutdown has begun: not counted
)

// track registers c. It returns nil and why when c is refused: shutdown has
// begun (refuseStopping), or c is past a bound (a metrics.Reject* reason).
func (t *connTable) track(c net.Conn, maxReason, perAddrReason string) (*connState, string) {
	st := &connState{addr: addrOf(c.RemoteAddr())}
	st.touch(time.Now())
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.stopping:
		return nil, refuseStopping
	case t.max > 0 && len(t.conns) >= t.max:
		return nil, maxReason
	case t.perAddr > 0 && t.byAddr[st.addr] >= t.perAddr:
		return nil, perAddrReason
	}
	t.conns[c] = st
	t.byAddr[st.addr]++
	return st, ""
}

// untrack forgets c and closes it.
func (t *connTable) untrack(c net.Conn, st *connState) {
	t.mu.Lock()
	delete(t.conns, c)
	if t.byAddr[st.addr]--; t.byAddr[st.addr] <= 0 {
		delete(t.byAddr, st.addr)
	}
	t.mu.Unlock()
	c.Close()
}

// stop refuses new connections and stops the reads of the open ones.
func (t *connTable) stop(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopping = true
	for c := range t.conns {
		_ = c.SetReadDeadline(now)
	}
}

// readDeadline returns c's SetReadDeadline for waits of its own (the
// framer's continuation wait). Once stop has run it keeps the deadline that
// stops the reads, so a wait that ends then cannot lift it.
func (t *connTable) readDeadline(c net.Conn) func(time.Time) error {
	return func(d time.Time) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopping {
			d = time.Now()
		}
		return c.SetReadDeadline(d)
	}
}

// closeIdle closes, every tenth of the idle timeout until ctx ends, the
// connections that delivered nothing for the idle timeout, and reports how
// many each time it closes some.
func (t *connTable) closeIdle(ctx context.Context, closed func(n int)) {
	if t.idle <= 0 {
		return
	}
	tick := time.NewTicker(max(t.idle/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			limit := now.Add(-t.idle).UnixNano()
			var idle []net.Conn
			t.mu.Lock()
			for c, st := range t.conns {
				if st.lastRead.Load() < limit {
					idle = append(idle, c)
				}
			}
			t.mu.Unlock()
			if len(idle) > 0 {
				closed(len(idle)) // counted first: a peer that sees the close sees the count
			}
			for _, c := range idle {
				_ = c.Close() // its reader sees the error, untracks and ends
			}
		}
	}
}

// acceptor accepts connections on one listener and hands each, registered
// in its table, to serve in a goroutine of its own.
type acceptor struct {
	l       net.Listener
	conns   *connTable
	wg      *sync.WaitGroup // counts the serve goroutines
	log     *slog.Logger
	errLog  *ratelog.Limiter
	what    string                          // names the listener in logs: "syslog tcp", "gelf tcp"
	refused func(c net.Conn, reason string) // a connection past a bound (closed after it)
	serve   func(c net.Conn, st *connState)
}

// run accepts until the listener is closed or ctx ends. An accept error
// (out of file descriptors, say) is logged at most once a second and
// retried after a growing pause, never in a busy loop.
func (a *acceptor) run(ctx context.Context) {
	var backoff time.Duration
	for {
		c, err := a.l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if n, ok := a.errLog.Allow(); ok {
				a.log.Warn("accept failed", slog.String("listener", a.what), slog.Any("error", err),
					slog.Duration("retry_in", backoff), slog.Int64("suppressed", n))
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		st, reason := a.conns.track(c, metrics.RejectMaxConnections, metrics.RejectMaxPerAddr)
		if st == nil {
			if reason != refuseStopping {
				a.refused(c, reason) // counted first: a peer that sees the close sees the count
			}
			c.Close() // accepted while shutting down, or past a bound
			continue
		}
		a.wg.Go(func() { a.serve(c, st) })
	}
}
