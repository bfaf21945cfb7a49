package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/ratelog"
	"github.com/logviewer/logviewer/transform"
)

// DefaultAddr is the syslog listen address used when none is given.
const DefaultAddr = ":10514"

// DefaultHandshakeTimeout bounds a TLS handshake when Config sets no bound,
// so a client that connects and says nothing cannot hold a goroutine.
const DefaultHandshakeTimeout = 10 * time.Second

// Transport labels of the syslog receiver's metrics and records.
const (
	transportTCP = "tcp"
	transportTLS = "tls"
)

// Publisher takes each record the server makes. The gelf bytes are reused
// after Publish returns, so an implementation copies what it keeps.
type Publisher interface {
	Publish(ctx context.Context, channel string, gelf []byte) error
}

// BatchPublisher is a Publisher that also takes several records at once, as
// (channel, GELF) pairs in order: the server hands it what one read of a
// TCP connection or one batch of UDP datagrams brought, so that the bus
// takes its lock and reads the clock once per read instead of once per
// line. The bytes are reused after PublishBatch returns.
type BatchPublisher interface {
	Publisher
	PublishBatch(ctx context.Context, records iter.Seq2[string, []byte]) error
}

// Config configures a Server.
type Config struct {
	Addr           string // TCP and UDP listen address; DefaultAddr when empty
	MaxMessageSize int    // longer frames are cut and marked truncated; DefaultMaxMessageSize when <= 0
	// ContinuationWait is how long a TCP message ended by LF waits for the
	// first bytes of its next line, which may continue it (a traceback);
	// DefaultContinuationWait when 0; < 0: every LF ends a message.
	ContinuationWait time.Duration
	ResolveDNS       bool // name peers by reverse DNS (cached); else by IP
	// ChannelFromApp names a record's channel by its APP-NAME or TAG, and by
	// its sending host only when it has none; else always by the host.
	ChannelFromApp bool
	// TLSAddr is the listen address of syslog over TLS (RFC 5425: octet
	// counting; LF and NUL framing work too); off when empty. It needs TLS.
	TLSAddr string
	// TLS serves TLSAddr: its certificate and, with ClientAuth
	// tls.RequireAndVerifyClientCert and ClientCAs, the CAs whose client
	// certificates are accepted; each record then carries the subject CN
	// of its sender's certificate as _tls_peer.
	TLS *tls.Config
	// HandshakeTimeout bounds each TLS handshake; DefaultHandshakeTimeout
	// when <= 0.
	HandshakeTimeout time.Duration
	// MaxConnections bounds the TCP and TLS connections open at once, and
	// MaxConnectionsPerAddr those from one address; a connection past
	// either is closed at once and counted. DefaultMaxConnections and
	// DefaultMaxConnectionsPerAddr when <= 0.
	MaxConnections        int
	MaxConnectionsPerAddr int
	// IdleTimeout closes a connection that sent nothing for this long;
	// DefaultIdleTimeout when 0, never when < 0.
	IdleTimeout time.Duration
	UDPBuffer   int // UDP socket receive buffer asked for, bytes; 0: the kernel's default
	// FrameBytes bounds the buffer all TCP and TLS connections together
	// hold beyond 4 KiB each: their partial messages. A message that would
	// need more is cut and marked truncated. DefaultFrameBytes when 0;
	// unbounded when < 0.
	FrameBytes int64
	Logger     *slog.Logger // nil: discard
}

// Connection bounds used when Config sets none.
const (
	DefaultMaxConnections        = 8192
	DefaultMaxConnectionsPerAddr = 1024
	DefaultIdleTimeout           = 10 * time.Minute
	DefaultFrameBytes            = 64 << 20
)

// Server receives syslog over TCP and UDP on one port, and over TLS on
// another when Config.TLSAddr is set, turns every message into a GELF record
// and publishes it on the channel of its sending host (or of its app, with
// Config.ChannelFromApp).
type Server struct {
	cfg   Config
	enc   *transform.Encoder
	pub   Publisher
	met   *metrics.Metrics
	log   *slog.Logger
	names *resolver

	sockets              // the plain TCP and UDP sockets
	tls     net.Listener // plain TCP: each connection does its handshake in its own goroutine; under sockets.mu

	udpSocket    udpSocketInfo // what the kernel granted the UDP socket
	udpSocketErr error         // socket options that failed; the socket works without them

	stopping atomic.Bool
	wg       sync.WaitGroup // connection, reader and UDP flush goroutines

	frames *FrameBudget // shared by the framers of all connections

	conns *connTable // TCP and TLS connections

	// Rate limits for logs on hot paths.
	acceptLog, readLog, publishLog, rejectLog, kernelDropLog ratelog.Limiter
}

// NewServer returns a Server that encodes with enc and publishes to pub,
// counting into m (a private set when m is nil). Call Listen, then Serve.
func NewServer(cfg Config, enc *transform.Encoder, pub Publisher, m *metrics.Metrics) *Server {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.ContinuationWait == 0 {
		cfg.ContinuationWait = DefaultContinuationWait
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.FrameBytes == 0 {
		cfg.FrameBytes = DefaultFrameBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New(prometheus.NewRegistry())
	}
	return &Server{
		cfg:    cfg,
		enc:    enc,
		pub:    pub,
		met:    m,
		log:    log,
		names:  newResolver(cfg.ResolveDNS, log),
		frames: NewFrameBudget(max(cfg.FrameBytes, 0)),
		conns:  newConnTable(cfg.MaxConnections, cfg.MaxConnectionsPerAddr, cfg.IdleTimeout),
	}
}

// NoPlainAddr as Config.Addr turns the plain TCP and UDP listeners off:
// syslog over TLS only.
const NoPlainAddr = "none"

// Listen binds TCP and UDP on the configured address, and TCP for TLS on
// the TLS address when one is set. With port 0 TCP and UDP get the same
// port: TCP picks it, UDP follows.
func (s *Server) Listen() error {
	if s.cfg.Addr == NoPlainAddr && s.cfg.TLSAddr == "" {
		return errors.New("listen syslog: no address: --syslog-addr none needs --syslog-tls-addr")
	}
	if s.cfg.Addr != NoPlainAddr {
		if err := s.listenPlain(); err != nil {
			return err
		}
	}
	if s.cfg.TLSAddr == "" {
		return nil
	}
	if s.cfg.TLS == nil {
		s.closeListeners()
		return fmt.Errorf("listen syslog tls %s: no TLS configuration", s.cfg.TLSAddr)
	}
	l, err := listenTCP(s.cfg.TLSAddr)
	if err != nil {
		s.closeListeners()
		return fmt.Errorf("syslog tls: %w", err)
	}
	s.mu.Lock()
	s.tls = l
	s.mu.Unlock()
	return nil
}

// closeListeners closes the plain listeners after a failed Listen.
func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp != nil {
		s.tcp.Close()
		s.udp.Close()
	}
	s.tcp, s.udp = nil, nil
}

// listenPlain binds TCP and UDP on the configured address.
func (s *Server) listenPlain() error {
	l, u, err := listenBoth(s.cfg.Addr, s.listenSyslogUDP)
	if err != nil {
		return err
	}
	s.setListeners(l, u)
	return nil
}

// listenBoth binds TCP and, with listenUDP, UDP on addr. With port 0 both
// get the same port: TCP picks it, UDP follows (another is tried when UDP
// has that one taken).
func listenBoth(addr string, listenUDP func(string) (*net.UDPConn, error)) (net.Listener, *net.UDPConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	for range 20 {
		l, err := listenTCP(addr)
		if err != nil {
			return nil, nil, err
		}
		bound := addr
		if port == "0" {
			bound = net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		}
		u, err := listenUDP(bound)
		if port == "0" && errors.Is(err, syscall.EADDRINUSE) {
			l.Close() // that port is taken for UDP: let TCP pick another
			continue
		}
		if err != nil {
			l.Close()
			return nil, nil, err
		}
		return l, u, nil
	}
	return nil, nil, fmt.Errorf("listen %s: no port free for both TCP and UDP", addr)
}

// sockets are a receiver's TCP listener and UDP socket on one address; mu
// lets their addresses be read while Serve binds them.
type sockets struct {
	mu  sync.Mutex
	tcp net.Listener
	udp *net.UDPConn
}

// setListeners records the bound sockets.
func (s *sockets) setListeners(l net.Listener, u *net.UDPConn) {
	s.mu.Lock()
	s.tcp, s.udp = l, u
	s.mu.Unlock()
}

// TCPAddr returns the bound TCP address, nil before Listen.
func (s *sockets) TCPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// UDPAddr returns the bound UDP address, nil before Listen.
func (s *sockets) UDPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

func listenTCP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", addr, bareError(err))
	}
	return l, nil
}

func listenUDP(addr string) (*net.UDPConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, bareError(err))
	}
	u := pc.(*net.UDPConn)
	// A big receive buffer rides out bursts; the kernel may cap it, which is fine.
	_ = u.SetReadBuffer(udpReadBuffer)
	return u, nil
}

// bareError strips the net.OpError and os.SyscallError layers, whose text
// would repeat the operation and address the caller already names.
func bareError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		err = sys.Err
	}
	return err
}

// TLSAddr returns the bound TLS address, nil before Listen or without
// Config.TLSAddr.
func (s *Server) TLSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// Serve receives messages until ctx ends (calling Listen first if needed).
// Then it stops accepting and reading, handles the frames already read,
// waits for every goroutine it started and returns nil. Serve runs once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	bound := s.tcp != nil || s.tls != nil
	s.mu.Unlock()
	if !bound {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.names.ctx = ctx
	// Records of frames already read are published even while shutting down.
	pubCtx := context.WithoutCancel(ctx)

	s.wg.Go(func() { s.conns.closeIdle(ctx, s.idleClosed) })
	if s.tcp != nil {
		s.wg.Go(func() { s.acceptLoop(ctx, pubCtx, s.tcp, transportTCP) })
		u := newUDPReader(s)
		s.wg.Go(func() { u.run(ctx, pubCtx) })
	}
	if s.tls != nil {
		s.wg.Go(func() { s.acceptLoop(ctx, pubCtx, s.tls, transportTLS) })
	}

	<-ctx.Done()
	s.stopping.Store(true)
	now := time.Now()
	if s.tcp != nil {
		s.tcp.Close()
		_ = s.udp.SetReadDeadline(now)
	}
	if s.tls != nil {
		s.tls.Close()
	}
	s.conns.stop(now)

	s.wg.Wait()
	s.names.wg.Wait()
	if s.udp != nil {
		s.udp.Close()
	}
	return nil
}

// handler turns frames into published records. Each goroutine that handles
// frames has its own, so the message and the output buffer are reused.
//
// A batching handler keeps the records it makes until flush (at the latest
// when maxBatchRecords or maxBatchBytes are pending); its owner flushes
// before it waits for more input. Any other publishes each record at once.
type handler struct {
	s         *Server
	transport string
	tlsPeer   string // the CN of the client certificate of a TLS connection
	lines     prometheus.Counter
	bytes     prometheus.Counter
	parsed    [transform.FormatRaw + 1]prometheus.Counter // by format
	library   [transform.FormatRaw + 1]prometheus.Counter // by format
	msg       transform.Message
	header    string          // the last line's header strings, reused by the next line with the same
	zones     zoneCache       // the last timestamp's zone, reused likewise
	out       []byte          // the GELF of the pending records, one after another
	pending   []pendingRecord // records made but not published yet
	batching  bool
	records   iter.Seq2[string, []byte]    // the pending records, for PublishBatch
	counted   int                          // lines handled since the last flush
	countedAs [transform.FormatRaw + 1]int // of those, by format
}

// pendingRecord is a record of a handler's batch: its GELF ends at end in
// the handler's out and starts where the one before ends.
type pendingRecord struct {
	channel string
	end     int
}

// Bounds of a handler's batch: what one 64 KiB read of short lines brings,
// and few enough records that the bus's lock is held briefly.
const (
	maxBatchRecords = 128
	maxBatchBytes   = 64 << 10
	// keptBatchBytes is the most of its batch buffer a handler keeps once a
	// batch comes out small (the burst is over): a connection that had one
	// holds no 64 KiB buffer for the rest of its life.
	keptBatchBytes = 4 << 10
	// yieldAfter is the smallest batch after which the handler yields to
	// the stream clients: one read that brought this many lines is a burst.
	yieldAfter = 16
)

func (s *Server) newHandler(transport string) *handler {
	h := &handler{
		s:         s,
		transport: transport,
		lines:     s.met.LinesReceived.WithLabelValues(transport),
		bytes:     s.met.BytesReceived.WithLabelValues(transport),
	}
	for f := transform.FormatRFC5424; f <= transform.FormatRaw; f++ {
		h.parsed[f] = s.met.Parsed.WithLabelValues(f.String())
		h.library[f] = s.met.ParseLibrary.WithLabelValues(f.String())
	}
	h.records = h.pendingRecords
	return h
}

// newBatchingHandler returns a handler that keeps its records until flush.
func (s *Server) newBatchingHandler(transport string) *handler {
	h := s.newHandler(transport)
	h.batching = true
	return h
}

// pendingRecords yields the pending records in order.
func (h *handler) pendingRecords(yield func(string, []byte) bool) {
	start := 0
	for _, r := range h.pending {
		if !yield(r.channel, h.out[start:r.end]) {
			return
		}
		start = r.end
	}
}

// flush publishes the pending records. A failure is logged, at most once
// a second: the bus has counted what it dropped.
func (h *handler) flush(ctx context.Context) {
	if h.counted > 0 {
		h.lines.Add(float64(h.counted))
		h.counted = 0
		for f, n := range h.countedAs {
			if n > 0 {
				h.parsed[f].Add(float64(n))
				h.countedAs[f] = 0
			}
		}
	}
	if len(h.pending) == 0 {
		return
	}
	s := h.s
	var err error
	if bp, ok := s.pub.(BatchPublisher); ok {
		err = bp.PublishBatch(ctx, h.records)
	} else {
		start := 0
		for _, r := range h.pending {
			if e := s.pub.Publish(ctx, r.channel, h.out[start:r.end]); e != nil && err == nil {
				err = e // the first is enough for the log
			}
			start = r.end
		}
	}
	burst := len(h.pending) >= yieldAfter
	if cap(h.out) > keptBatchBytes && len(h.out) < cap(h.out)/4 {
		h.out = nil
	}
	h.out, h.pending = h.out[:0], h.pending[:0]
	if burst {
		// Let the stream clients just woken run: during a burst the reads
		// never block, and without a yield a client's writer waits for the
		// scheduler's 10 ms time slice while its queue overflows.
		runtime.Gosched()
	}
	if err != nil {
		if n, ok := s.publishLog.Allow(); ok {
			s.log.Warn("publish failed", slog.Any("error", err), slog.Int64("suppressed", n))
		}
	}
}

// handle parses, encodes and publishes one frame from peer p, read at
// received. Nothing in a frame is an error: odd ones are counted and logged
// at debug.
func (h *handler) handle(ctx context.Context, p peerName, frame []byte, truncated bool, received time.Time) {
	s, m := h.s, &h.msg
	m.Reset()
	library := parser{now: time.Now, at: received, header: &h.header, zones: &h.zones}.parse(frame, m)
	m.Received = received
	m.Peer = p.name
	m.Transport = h.transport
	m.TLSPeer = h.tlsPeer
	m.Truncated = truncated

	h.counted++
	if truncated {
		s.met.Truncated.Inc()
	}
	if int(m.Format) < len(h.parsed) && h.parsed[m.Format] != nil {
		h.countedAs[m.Format]++
		if library {
			h.library[m.Format].Inc()
		}
	}
	var replaced bool
	h.out, replaced = s.enc.Append(h.out, m)
	if replaced {
		s.met.InvalidUTF8.Inc()
	}
	if (truncated || replaced || m.Format == transform.FormatRaw) && s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("odd syslog message", slog.String("peer", p.name), slog.String("transport", h.transport),
			slog.String("format", m.Format.String()), slog.Bool("truncated", truncated),
			slog.Bool("invalid_utf8", replaced), slog.Int("size", len(frame)))
	}
	channel := p.channel
	if s.cfg.ChannelFromApp && m.AppName != "" {
		channel = transform.ChannelName(m.AppName)
	}
	h.pending = append(h.pending, pendingRecord{channel: channel, end: len(h.out)})
	if !h.batching || len(h.pending) >= maxBatchRecords || len(h.out) >= maxBatchBytes {
		h.flush(ctx)
	}
}
