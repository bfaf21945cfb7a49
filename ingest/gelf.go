package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/ratelog"
)

// DefaultGELFAddr is the conventional GELF port, UDP and TCP.
const DefaultGELFAddr = ":12201"

// Transport labels of the GELF receiver's metrics.
const (
	transportGELFUDP = "gelf-udp"
	transportGELFTCP = "gelf-tcp"
)

// gelfReadBuffer is how much a GELF TCP connection reads at once.
const gelfReadBuffer = 32 << 10

// GELFConfig configures a GELFServer.
type GELFConfig struct {
	Addr           string // TCP and UDP listen address; DefaultGELFAddr when empty
	MaxMessageSize int    // bytes a message may have (decompressed); longer ones are dropped; DefaultMaxMessageSize when <= 0
	ResolveDNS     bool   // name peers by reverse DNS (cached); else by IP
	ChannelFromApp bool   // channel from _container_name, _app or facility; else the sending host
	// Bounds of the TCP connections, as Config's for syslog: in total, per
	// address, and the idle timeout (0: the defaults; idle < 0: never).
	MaxConnections        int
	MaxConnectionsPerAddr int
	IdleTimeout           time.Duration
	Logger                *slog.Logger // nil: discard
}

// GELFServer receives GELF 1.1 records over UDP (plain, gzip, zlib or
// chunked) and TCP (NUL-delimited) on one port, completes them and
// publishes each on its channel.
type GELFServer struct {
	cfg    GELFConfig
	pub    Publisher
	met    *metrics.Metrics
	log    *slog.Logger
	names  *resolver
	chunks *chunkAssembler

	sockets // the TCP and UDP sockets

	stopping atomic.Bool
	wg       sync.WaitGroup // connection, reader, sweeper and peer-queue goroutines

	conns *connTable // TCP connections

	// lookups holds the datagrams of peers whose names are being looked up.
	lookups *lookupQueues

	dropped map[string]prometheus.Counter // by reason

	// Rate limits for logs on hot paths.
	acceptLog, readLog, publishLog, dropLog ratelog.Limiter
}

// NewGELFServer returns a GELFServer that publishes to pub, counting into m
// (a private set when m is nil). Call Listen, then Serve.
func NewGELFServer(cfg GELFConfig, pub Publisher, m *metrics.Metrics) *GELFServer {
	if cfg.Addr == "" {
		cfg.Addr = DefaultGELFAddr
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New(prometheus.NewRegistry())
	}
	s := &GELFServer{
		cfg:   cfg,
		pub:   pub,
		met:   m,
		log:   log,
		names: newResolver(cfg.ResolveDNS, log),
		conns: newConnTable(cfg.MaxConnections, cfg.MaxConnectionsPerAddr, cfg.IdleTimeout),
		dropped: map[string]prometheus.Counter{
			metrics.DropGELFIncomplete: m.Dropped.WithLabelValues(metrics.DropGELFIncomplete),
			metrics.DropGELFInvalid:    m.Dropped.WithLabelValues(metrics.DropGELFInvalid),
			metrics.DropGELFTooLarge:   m.Dropped.WithLabelValues(metrics.DropGELFTooLarge),
		},
	}
	s.lookups = newLookupQueues(s.names, &s.wg, func() handleFunc {
		h := s.newHandler(transportGELFUDP)
		return func(ctx context.Context, p peerName, d []byte, _ bool, received time.Time) {
			h.handle(ctx, p, d, received)
		}
	})
	s.chunks = newChunkAssembler(func(peer netip.Addr, have, count int) {
		s.drop(peer.String(), transportGELFUDP, &gelfDrop{
			reason: metrics.DropGELFIncomplete,
			err:    fmt.Errorf("%d of %d chunks within %v", have, count, s.chunks.timeout),
		})
	})
	return s
}

// Listen binds TCP and UDP on the configured address. With port 0 both get
// the same port: TCP picks it, UDP follows.
func (s *GELFServer) Listen() error {
	l, u, err := listenBoth(s.cfg.Addr, listenUDP)
	if err != nil {
		return fmt.Errorf("gelf: %w", err)
	}
	s.setListeners(l, u)
	return nil
}

// Serve receives records until ctx ends (calling Listen first if needed).
// Then it stops accepting and reading, publishes the records already read,
// waits for every goroutine it started and returns nil. Serve runs once.
func (s *GELFServer) Serve(ctx context.Context) error {
	s.mu.Lock()
	bound := s.tcp != nil
	s.mu.Unlock()
	if !bound {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.names.ctx = ctx
	// Records already read are published even while shutting down.
	pubCtx := context.WithoutCancel(ctx)

	s.wg.Go(func() { s.acceptLoop(ctx, pubCtx) })
	s.wg.Go(func() {
		s.conns.closeIdle(ctx, func(n int) { s.met.Rejected.WithLabelValues(metrics.RejectIdle).Add(float64(n)) })
	})
	s.wg.Go(func() { s.readUDP(ctx, pubCtx) })
	s.wg.Go(func() { s.sweep(ctx) })

	<-ctx.Done()
	s.stopping.Store(true)
	now := time.Now()
	s.tcp.Close()
	_ = s.udp.SetReadDeadline(now)
	s.conns.stop(now)

	s.wg.Wait()
	s.names.wg.Wait()
	s.udp.Close()
	s.chunks.dropAll() // counted: they will never be whole now
	return nil
}

// sweep drops timed-out chunked messages even when no datagram comes.
func (s *GELFServer) sweep(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.chunks.expire()
		case <-ctx.Done():
			return
		}
	}
}

// drop counts a message that is not published and logs it, at most once a
// second.
func (s *GELFServer) drop(peer, transport string, err error) {
	reason := dropReason(err)
	s.dropped[reason].Inc()
	if n, ok := s.dropLog.Allow(); ok {
		s.log.Warn("gelf message dropped", slog.String("peer", peer), slog.String("transport", transport),
			slog.String("reason", reason), slog.Any("error", err), slog.Int64("suppressed", n))
	}
}

// gelfHandler decodes and publishes whole GELF messages. Each goroutine
// that handles messages has its own.
type gelfHandler struct {
	s         *GELFServer
	transport string
	lines     prometheus.Counter
	bytes     prometheus.Counter
	dec       *gelfDecoder
}

func (s *GELFServer) newHandler(transport string) *gelfHandler {
	return &gelfHandler{
		s:         s,
		transport: transport,
		lines:     s.met.LinesReceived.WithLabelValues(transport),
		bytes:     s.met.BytesReceived.WithLabelValues(transport),
		dec:       newGELFDecoder(s.cfg.MaxMessageSize, s.cfg.ChannelFromApp),
	}
}

// handle decodes one message from peer p, received then, and publishes it.
func (h *gelfHandler) handle(ctx context.Context, p peerName, payload []byte, received time.Time) {
	s := h.s
	h.lines.Inc()
	record, channel, replaced, err := h.dec.decode(payload, p, received)
	if err != nil {
		s.drop(p.name, h.transport, err)
		return
	}
	if replaced {
		s.met.InvalidUTF8.Inc()
	}
	if err := s.pub.Publish(ctx, channel, record); err != nil {
		if n, ok := s.publishLog.Allow(); ok {
			s.log.Warn("publish failed", slog.String("channel", channel), slog.Any("error", err),
				slog.Int64("suppressed", n))
		}
	}
}

// readUDP reads datagrams until shutdown stops the reads: whole messages
// are handled, chunks are put together first. A read error costs the
// datagram (counted, logged rate-limited), never the reader.
func (s *GELFServer) readUDP(ctx, pubCtx context.Context) {
	h := s.newHandler(transportGELFUDP)
	readErr := s.met.Dropped.WithLabelValues(metrics.DropUDPBuffer)
	buf := make([]byte, udpMaxDatagram)
	var backoff time.Duration
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			readErr.Inc()
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			if n, ok := s.readLog.Allow(); ok {
				s.log.Warn("gelf udp read failed", slog.Any("error", err), slog.Int64("suppressed", n))
			}
			time.Sleep(backoff) // an error that repeats must not spin
			continue
		}
		backoff = 0
		h.bytes.Add(float64(n))
		a := from.Addr().Unmap()
		d := buf[:n]
		if isGELFChunk(d) {
			if d, err = s.chunks.add(a, d); err != nil {
				s.drop(a.String(), transportGELFUDP, err)
				continue
			}
			if d == nil {
				continue // more chunks to come
			}
		}
		s.dispatch(ctx, pubCtx, h, a, d, time.Now())
	}
}

// dispatch handles a message now, or queues it behind its peer's lookup so
// that other peers' datagrams go on meanwhile.
func (s *GELFServer) dispatch(ctx, pubCtx context.Context, h *gelfHandler, a netip.Addr, d []byte, received time.Time) {
	if s.lookups.queueIfWaiting(a, d, false, received) {
		return // keeps this peer's order
	}
	peer, ok, e := s.names.get(a)
	if ok {
		h.handle(pubCtx, peer, d, received)
		return
	}
	s.lookups.start(ctx, pubCtx, a, e, d, false, received)
}

// acceptLoop accepts TCP connections until the listener is closed and serves
// each in its own goroutine.
func (s *GELFServer) acceptLoop(ctx, pubCtx context.Context) {
	a := &acceptor{
		l: s.tcp, conns: s.conns, wg: &s.wg, log: s.log, errLog: &s.acceptLog, what: "gelf tcp",
		refused: func(c net.Conn, reason string) {
			s.met.Rejected.WithLabelValues(reason).Inc()
			if n, ok := s.dropLog.Allow(); ok {
				s.log.Warn("gelf connection refused", slog.String("reason", reason),
					slog.String("peer", addrOf(c.RemoteAddr()).String()), slog.Int64("suppressed", n))
			}
		},
		serve: func(c net.Conn, st *connState) { s.serveConn(ctx, pubCtx, c, st) },
	}
	a.run(ctx)
}

// serveConn handles the NUL-delimited records of one TCP connection until
// the peer closes it or shutdown stops its reads; records already read are
// handled either way.
func (s *GELFServer) serveConn(ctx, pubCtx context.Context, c net.Conn, st *connState) {
	defer s.conns.untrack(c, st)
	conns := s.met.Connections.WithLabelValues(transportGELFTCP)
	conns.Inc()
	defer conns.Dec()

	peer := s.names.name(ctx, addrOf(c.RemoteAddr()))
	h := s.newHandler(transportGELFTCP)
	fr := newNULFramer(c, s.cfg.MaxMessageSize)
	var counted int64
	for {
		frame, tooLong, err := fr.next()
		if fr.n > counted {
			h.bytes.Add(float64(fr.n - counted))
			counted = fr.n
			st.touch(time.Now())
		}
		switch {
		case err != nil:
			if !errors.Is(err, io.EOF) && !(s.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded)) {
				s.log.Debug("gelf tcp connection ended", slog.String("peer", peer.name), slog.Any("error", err))
			}
			return
		case tooLong:
			h.lines.Inc()
			s.drop(peer.name, transportGELFTCP, gelfTooLarge(s.cfg.MaxMessageSize+1, s.cfg.MaxMessageSize))
		default:
			h.handle(pubCtx, peer, frame, time.Now())
		}
	}
}

// nulFramer splits a stream into NUL-terminated frames of at most max
// bytes; a longer frame is skipped up to its NUL and reported once.
type nulFramer struct {
	r          io.Reader
	max        int
	buf        []byte // bytes read, buf[start:end] not yet framed
	start, end int
	frame      []byte // the frame being gathered across reads
	skipping   bool   // the frame being read is too long
	err        error  // the read error, returned once the frames before it are
	n          int64  // bytes read in all
}

func newNULFramer(r io.Reader, max int) *nulFramer {
	return &nulFramer{r: r, max: max, buf: make([]byte, gelfReadBuffer)}
}

// next returns the next non-empty frame, valid until the next call, or
// tooLong for a frame past max, or the read error (io.EOF at the end). A
// last frame without its NUL is returned before io.EOF.
func (f *nulFramer) next() (frame []byte, tooLong bool, err error) {
	for {
		if i := bytes.IndexByte(f.buf[f.start:f.end], 0); i >= 0 {
			piece := f.buf[f.start : f.start+i]
			f.start += i + 1
			if frame, tooLong, ok := f.finish(piece); ok {
				return frame, tooLong, nil
			}
			continue
		}
		f.gather(f.buf[f.start:f.end])
		f.start, f.end = 0, 0
		if f.err != nil {
			// Only a clean end completes a last frame without its NUL.
			if errors.Is(f.err, io.EOF) {
				if frame, tooLong, ok := f.finish(nil); ok {
					return frame, tooLong, nil
				}
			}
			return nil, false, f.err
		}
		n, err := f.r.Read(f.buf)
		f.end, f.n, f.err = n, f.n+int64(n), err
	}
}

// gather adds piece to the frame being read, or starts skipping it when it
// gets too long.
func (f *nulFramer) gather(piece []byte) {
	if f.skipping || len(piece) == 0 {
		return
	}
	if len(f.frame)+len(piece) > f.max {
		f.skipping, f.frame = true, f.frame[:0]
		return
	}
	f.frame = append(f.frame, piece...)
}

// finish ends the frame being read with its last piece; ok is false when
// there is nothing to return (an empty frame).
func (f *nulFramer) finish(piece []byte) (frame []byte, tooLong, ok bool) {
	if f.skipping {
		f.skipping = false
		return nil, true, true
	}
	if len(f.frame) == 0 {
		if len(piece) > f.max {
			return nil, true, true
		}
		return piece, false, len(piece) > 0
	}
	f.gather(piece)
	if f.skipping {
		f.skipping = false
		return nil, true, true
	}
	frame, f.frame = f.frame, f.frame[:0]
	return frame, false, true
}
