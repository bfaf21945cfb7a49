package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"
)

// acceptLoop accepts TCP connections until the listener is closed and serves
// each in its own goroutine.
func (s *Server) acceptLoop(ctx, pubCtx context.Context) {
	var backoff time.Duration
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if n, ok := s.acceptLog.allow(); ok {
				s.log.Warn("accept failed", slog.Any("error", err), slog.Duration("retry_in", backoff),
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
		if !s.track(c) {
			c.Close() // accepted while shutting down
			continue
		}
		s.wg.Go(func() { s.serveConn(ctx, pubCtx, c) })
	}
}

// track registers c so that shutdown can stop its reads. It returns false
// once shutdown has begun.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// serveConn frames and handles one TCP connection until the peer closes it
// or shutdown stops its reads; frames already read are handled either way.
func (s *Server) serveConn(ctx, pubCtx context.Context, c net.Conn) {
	defer s.untrack(c)
	conns := s.met.Connections.WithLabelValues("tcp")
	conns.Inc()
	defer conns.Dec()

	addr := addrOf(c.RemoteAddr())
	peer := s.names.name(ctx, addr)
	h := s.newHandler("tcp")
	fr := NewFramer(c, s.cfg.MaxMessageSize)
	fr.SetContinuation(s.cfg.ContinuationWait, s.readDeadline(c))
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
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !(s.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded)) {
				s.log.Debug("tcp connection ended", slog.String("peer", peer.name), slog.Any("error", err))
			}
			return
		}
		h.handle(pubCtx, peer, frame, truncated, received)
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
