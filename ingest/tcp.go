package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
)

// acceptLoop accepts connections on l until it is closed and serves each in
// its own goroutine; transport is tcp or tls.
func (s *Server) acceptLoop(ctx, pubCtx context.Context, l net.Listener, transport string) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if n, ok := s.acceptLog.Allow(); ok {
				s.log.Warn("accept failed", slog.String("transport", transport), slog.Any("error", err), slog.Duration("retry_in", backoff),
					slog.Int64("suppressed", n))
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		st, reason := s.track(c)
		if st == nil {
			c.Close() // accepted while shutting down, or past a bound
			if reason != "" {
				s.reject(reason, addrOf(c.RemoteAddr()), nil)
			}
			continue
		}
		s.wg.Go(func() { s.serveConn(ctx, pubCtx, c, st, transport) })
	}
}

// connState is what the server keeps of an open connection.
type connState struct {
	addr     netip.Addr
	lastRead atomic.Int64 // Unix nanoseconds of the last bytes read (or of the accept)
}

// track registers c so that shutdown can stop its reads and the idle sweep
// can close it. It returns nil once shutdown has begun, or with the reason
// when c is past the connection bounds.
func (s *Server) track(c net.Conn) (*connState, string) {
	st := &connState{addr: addrOf(c.RemoteAddr())}
	st.lastRead.Store(time.Now().UnixNano())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopping.Load():
		return nil, ""
	case len(s.conns) >= s.cfg.MaxConnections:
		return nil, metrics.RejectMaxConnections
	case s.byAddr[st.addr] >= s.cfg.MaxConnectionsPerAddr:
		return nil, metrics.RejectMaxPerAddr
	}
	s.conns[c] = st
	s.byAddr[st.addr]++
	return st, ""
}

func (s *Server) untrack(c net.Conn, st *connState) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.byAddr[st.addr]--; s.byAddr[st.addr] <= 0 {
		delete(s.byAddr, st.addr)
	}
	s.mu.Unlock()
	c.Close()
}

// closeIdle closes, every tenth of the idle timeout, the connections that
// read nothing for the idle timeout, until ctx ends.
func (s *Server) closeIdle(ctx context.Context) {
	t := time.NewTicker(max(s.cfg.IdleTimeout/10, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			limit := now.Add(-s.cfg.IdleTimeout).UnixNano()
			var idle []net.Conn
			s.mu.Lock()
			for c, st := range s.conns {
				if st.lastRead.Load() < limit {
					idle = append(idle, c)
				}
			}
			s.mu.Unlock()
			for _, c := range idle {
				_ = c.Close() // its serveConn sees the error, untracks and ends
				s.met.Rejected.WithLabelValues(metrics.RejectIdle).Inc()
			}
			if len(idle) > 0 {
				s.log.Debug("idle syslog connections closed", slog.Int("count", len(idle)),
					slog.Duration("idle_timeout", s.cfg.IdleTimeout))
			}
		}
	}
}

// serveConn frames and handles one connection until the peer closes it or
// shutdown stops its reads; frames already read are handled either way. A
// tls connection does its handshake first; a plain tcp one is refused when
// it begins as TLS or HTTP.
func (s *Server) serveConn(ctx, pubCtx context.Context, c net.Conn, st *connState, transport string) {
	defer s.untrack(c, st)
	conns := s.met.Connections.WithLabelValues(transport)
	conns.Inc()
	defer conns.Dec()

	addr := addrOf(c.RemoteAddr())
	h := s.newHandler(transport)
	var r io.Reader = c
	if transport == transportTLS {
		tc, ok := s.handshake(ctx, c, addr)
		if !ok {
			return
		}
		r, h.tlsPeer = tc, clientCN(tc)
	}
	fr := NewFramer(r, s.cfg.MaxMessageSize)
	fr.SetContinuation(s.cfg.ContinuationWait, s.readDeadline(c))
	fr.SetBudget(s.frames)
	defer fr.Release()
	if transport == transportTCP {
		if reason := probe(fr); reason != "" {
			s.reject(reason, addr, nil)
			return
		}
	}
	peer := s.names.name(ctx, addr)
	var counted int64
	var received time.Time
	for {
		frame, truncated, err := fr.Next()
		if n := fr.BytesRead(); n > counted {
			// A read happened: the frames it completed were received now.
			// Frames already buffered keep the time of their read.
			h.bytes.Add(float64(n - counted))
			counted = n
			received = time.Now()
			st.lastRead.Store(received.UnixNano())
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !(s.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded)) {
				s.log.Debug("connection ended", slog.String("peer", peer.name), slog.String("transport", transport),
					slog.Any("error", err))
			}
			return
		}
		h.handle(pubCtx, peer, frame, truncated, received)
	}
}

// handshake does the TLS handshake of c within the handshake timeout. A
// failure is counted and logged (at most once a second), unless shutdown
// caused it.
func (s *Server) handshake(ctx context.Context, c net.Conn, addr netip.Addr) (*tls.Conn, bool) {
	tc := tls.Server(c, s.cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if ctx.Err() == nil && !s.stopping.Load() {
			s.reject(metrics.RejectTLSHandshake, addr, err)
		}
		return nil, false
	}
	return tc, true
}

// clientCN returns the subject common name of the verified client
// certificate of c, or "" without one.
func clientCN(c *tls.Conn) string {
	st := c.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// reject counts a connection refused for reason and logs it, at most once a
// second over all reasons.
func (s *Server) reject(reason string, addr netip.Addr, err error) {
	s.met.Rejected.WithLabelValues(reason).Inc()
	if n, ok := s.rejectLog.Allow(); ok {
		attrs := []any{slog.String("reason", reason), slog.String("peer", addr.String()), slog.Int64("suppressed", n)}
		if err != nil {
			attrs = append(attrs, slog.Any("error", err))
		}
		s.log.Warn("syslog connection refused", attrs...)
	}
}

// readDeadline returns c's SetReadDeadline for the framer's continuation
// wait. Once shutdown has begun it keeps the deadline that stops the reads,
// so a wait that ends then cannot lift it.
func (s *Server) readDeadline(c net.Conn) func(time.Time) error {
	return func(t time.Time) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopping.Load() {
			t = time.Now()
		}
		return c.SetReadDeadline(t)
	}
}

// addrOf returns the IP of a TCP or UDP address, IPv4-mapped IPv6 unmapped.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
