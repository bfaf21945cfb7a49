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
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
)

// acceptLoop accepts connections on l until it is closed and serves each in
// its own goroutine; transport is tcp or tls.
func (s *Server) acceptLoop(ctx, pubCtx context.Context, l net.Listener, transport string) {
	a := &acceptor{
		l: l, conns: s.conns, wg: &s.wg, log: s.log, errLog: &s.acceptLog, what: "syslog " + transport,
		refused: func(c net.Conn, reason string) { s.reject(reason, addrOf(c.RemoteAddr()), nil) },
		serve:   func(c net.Conn, st *connState) { s.serveConn(ctx, pubCtx, c, st, transport) },
	}
	a.run(ctx)
}

// idleClosed counts and logs the connections the idle sweep closed.
func (s *Server) idleClosed(n int) {
	s.met.Rejected.WithLabelValues(metrics.RejectIdle).Add(float64(n))
	s.log.Debug("idle syslog connections closed", slog.Int("count", n), slog.Duration("idle_timeout", s.conns.idle))
}

// serveConn frames and handles one connection until the peer closes it or
// shutdown stops its reads; frames already read are handled either way. A
// tls connection does its handshake first; a plain tcp one is refused when
// it begins as TLS or HTTP.
func (s *Server) serveConn(ctx, pubCtx context.Context, c net.Conn, st *connState, transport string) {
	defer s.conns.untrack(c, st)
	conns := s.met.Connections.WithLabelValues(transport)
	conns.Inc()
	defer conns.Dec()

	addr := addrOf(c.RemoteAddr())
	h := s.newBatchingHandler(transport)
	defer h.flush(pubCtx)
	var r io.Reader = c
	if transport == transportTLS {
		tc, ok := s.handshake(ctx, c, addr)
		if !ok {
			return
		}
		r, h.tlsPeer = tc, clientCN(tc)
	}
	fr := NewFramer(r, s.cfg.MaxMessageSize)
	fr.SetContinuation(s.cfg.ContinuationWait, s.conns.readDeadline(c))
	fr.SetBudget(s.frames)
	fr.SetBeforeRead(func() { h.flush(pubCtx) })
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
			st.touch(received)
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
