package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/peerwatch"
	"github.com/logviewer/logviewer/internal/ratelog"
	"github.com/logviewer/logviewer/internal/tlsfile"
	"github.com/logviewer/logviewer/publish"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultHeartbeat is the interval of SSE heartbeats (and WebSocket pings)
// on an idle stream when Config.Heartbeat is zero.
const DefaultHeartbeat = 15 * time.Second

const (
	// maxPatternLen bounds the channel patterns of a stream, all together.
	maxPatternLen = 4096
	// maxIDLen bounds a resume ID (Last-Event-ID or ?since=).
	maxIDLen = 768 // publish.maxTokenLen: a resume token of every cluster bucket
	// maxTail bounds ?tail=N; larger values are clamped to it.
	maxTail = 100_000
	// queueSize is each client's subscription queue: a client further
	// behind than this loses its oldest records.
	queueSize = 16384
	// batchSize is how many events one Subscription.Next call takes, and so
	// the most records written between two flushes.
	batchSize = 256
	// defaultWriteTimeout bounds the write of one batch: a peer that takes
	// longer to accept it is taken for dead and disconnected.
	defaultWriteTimeout = 10 * time.Second
	// shutdownTimeout bounds Serve's return after its context ends.
	shutdownTimeout = 5 * time.Second
	// forceCloseAfter is when, after the context ends, connections still
	// open are cut so Serve can return within shutdownTimeout.
	forceCloseAfter = 4 * time.Second
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on, e.g. ":8080".
	Addr string
	// WSDeflate is the WebSocket permessage-deflate a client may negotiate:
	// "" or "off" (none), "message" (each message of 512 bytes or more
	// compressed on its own) or "context" (compression carries over from
	// message to message: the best ratio, and about 1.2 MiB per client).
	WSDeflate string
	// AllowOrigins lists the browser origins (host[:port] globs, or
	// scheme://host globs; "*" for any) allowed to open /ws and /sse from
	// another site. The server's own host is always allowed.
	AllowOrigins []string
	// Heartbeat is the interval of keep-alive messages on an idle stream;
	// zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Auth authenticates every request but /healthz and the login page, and
	// each user reads only their channels; nil: no authentication.
	Auth *auth.Authenticator
	// AllowHosts lists the Host names ("logs.example.com", "*.example.com",
	// "*") served without authentication besides IP literals and localhost.
	AllowHosts []string
	// TLS, when set, serves HTTPS (HTTP/2 included) with its certificate.
	TLS *tlsfile.Certificate
	// MaxClients bounds the streams open at once; past it a new one gets
	// 503 with Retry-After. DefaultMaxClients when 0.
	MaxClients int
	// SlowAfter is how long a client may keep losing records (its queue
	// full) before it is disconnected as slow; DefaultSlowAfter when 0.
	SlowAfter time.Duration
	// ClientQueueBytes bounds the bytes of records queued for one client;
	// DefaultClientQueueBytes when 0. (The bus bounds all clients together.)
	ClientQueueBytes int64
}

// Defaults for Config.
const (
	DefaultMaxClients = 10000
	DefaultSlowAfter  = 30 * time.Second
	// DefaultClientQueueBytes holds a queueSize of typical records.
	DefaultClientQueueBytes = 8 << 20
)

// Server serves the stream API over HTTP: WebSocket and SSE streams per
// channel pattern, the channel list, health, metrics and the web viewer.
type Server struct {
	cfg      Config
	bus      Source
	metrics  *metrics.Metrics
	gatherer prometheus.Gatherer
	log      *slog.Logger
	origins  originPolicy
	handler  http.Handler
	// writeTimeout bounds one batch's write (defaultWriteTimeout).
	writeTimeout time.Duration

	// stop ends when Serve's context ends: every streaming handler then
	// writes what its subscription already holds and closes. It is the
	// server's own lifetime, apart from any request's context.
	stop     context.Context
	stopNow  context.CancelFunc
	listener net.Listener
	// ended is a context ended from the start, which the pumps share.
	ended context.Context

	mu       sync.Mutex
	clients  int                   // open streams, bounded by MaxClients
	open     atomic.Int64          // clients, read without mu by the pumps' pacing
	stopping bool                  // no new streams once set
	streams  sync.WaitGroup        // running streaming handlers
	conns    map[net.Conn]struct{} // connections taken from net/http by streams

	peersOnce sync.Once
	peers     *peerwatch.Watcher // made by the first taken connection; nil if epoll failed

	refusedLog ratelog.Limiter // "too many clients", at most once a second
	chanCache  channelCache    // the last listing of the bus's channels
}

// NewServer creates a server for bus. m counts clients (it may be nil);
// gatherer is what /metrics exposes (nil: an empty registry).
func NewServer(cfg Config, bus Source, m *metrics.Metrics, gatherer prometheus.Gatherer) *Server {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.SlowAfter <= 0 {
		cfg.SlowAfter = DefaultSlowAfter
	}
	if cfg.ClientQueueBytes <= 0 {
		cfg.ClientQueueBytes = DefaultClientQueueBytes
	}
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		bus:      bus,
		metrics:  m,
		gatherer: gatherer,
		log:      cfg.Logger,
		conns:    map[net.Conn]struct{}{},

		writeTimeout: defaultWriteTimeout,
	}
	for _, kind := range []string{"sse", "ws"} {
		s.clientGauge(kind) // a sample at 0 from the start
	}
	s.origins = newOriginPolicy(cfg.AllowOrigins, s.log)
	s.stop, s.stopNow = context.WithCancel(context.Background())
	ended, end := context.WithCancel(context.Background())
	end()
	s.ended = ended
	s.handler = s.routes()
	return s
}

// routes builds the request multiplexer.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sse/{channel}", s.handleSSE)
	mux.HandleFunc("GET /sse", s.handleSSE) // the channels in ?ch=
	mux.HandleFunc("GET /ws/{channel}", s.handleWS)
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /api/channels", s.handleChannels)
	mux.HandleFunc("GET /api/me", s.handleMe)
	mux.HandleFunc("GET /api/search", s.handleSearch)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.Handle("GET /", webHandler())
	return s.guard(mux)
}

// Handler returns the server's HTTP handler (all routes), for tests and
// for mounting under another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the TCP listener on Config.Addr.
func (s *Server) Listen() error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", s.cfg.Addr, err)
	}
	s.listener = unsentLimitListener{l}
	return nil
}

// Addr returns the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Serve answers requests until ctx ends (calling Listen first if it was
// not called). Then it stops accepting connections, has every stream write
// the events its subscription already holds and close cleanly (WebSocket
// close status 1001, SSE end of response), and returns within 5 s.
func (s *Server) Serve(ctx context.Context) error {
	if s.listener == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.exposed() {
		s.log.Warn("no authentication and listening beyond loopback: anyone who reaches this port reads every log "+
			"(see --auth-file, --auth-proxy-header)", slog.String("addr", s.listener.Addr().String()))
	}
	served := make(chan error, 1)
	if s.cfg.TLS != nil {
		srv.TLSConfig = s.cfg.TLS.ServerConfig() // ServeTLS adds HTTP/2
		go func() { served <- srv.ServeTLS(s.listener, "", "") }()
	} else {
		go func() { served <- srv.Serve(s.listener) }()
	}

	select {
	case err := <-served:
		s.stopStreams()
		return fmt.Errorf("serve http %s: %w", s.listener.Addr(), err)
	case <-ctx.Done():
	}
	start := time.Now()
	s.log.Debug("http server stopping", slog.String("addr", s.listener.Addr().String()))
	s.stopStreams()

	shutCtx, cancel := context.WithTimeout(context.Background(), forceCloseAfter)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(shutCtx) }() // closes the listener at once
	streamsDone := make(chan struct{})
	go func() { s.streams.Wait(); close(streamsDone) }()

	select {
	case <-streamsDone:
	case <-shutCtx.Done():
		// A peer that does not take its last events or answer the close
		// handshake: cut it.
		s.log.Warn("streams still open at the shutdown deadline; closing their connections")
		s.closeConns()
		_ = srv.Close()
		select {
		case <-streamsDone:
		case <-time.After(shutdownTimeout - time.Since(start)):
			s.log.Warn("streams did not end after their connections were closed")
		}
	}
	if err := <-shutdown; err != nil {
		s.log.Debug("http shutdown cut short", slog.Any("error", err))
		_ = srv.Close()
	}
	<-served // http.ErrServerClosed
	return nil
}

// stopStreams tells every streaming handler to drain and close, and keeps
// new ones from starting.
func (s *Server) stopStreams() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.stopNow()
}

// closeConns cuts every hijacked connection still open.
func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Pacing of the writes to stream clients: at most flushBudget flushes a
// second over all clients together, and at most maxPace between a record
// and its flush for any one client. With few clients every record leaves
// at once; with many, each client's records leave in batches.
const (
	flushBudget = 200_000
	maxPace     = 5 * time.Millisecond
)

// pace is the least time between two flushes to one client now.
func (s *Server) pace() time.Duration {
	return min(time.Duration(s.open.Load())*(time.Second/flushBudget), maxPace)
}

// pumpConfig returns the timings of a client's pump.
func (s *Server) pumpConfig() pumpConfig {
	return pumpConfig{heartbeat: s.cfg.Heartbeat, slowAfter: s.cfg.SlowAfter, pace: s.pace, done: s.ended}
}

// beginStream registers a streaming handler. It fails once the server stops
// or when MaxClients streams are open.
func (s *Server) beginStream() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopping:
		return errors.New("server shutting down")
	case s.clients >= s.cfg.MaxClients:
		return errTooManyClients
	}
	s.clients++
	s.open.Store(int64(s.clients))
	s.streams.Add(1)
	return nil
}

// endStream undoes beginStream.
func (s *Server) endStream() {
	s.mu.Lock()
	s.clients--
	s.open.Store(int64(s.clients))
	s.mu.Unlock()
	s.streams.Done()
}

// errTooManyClients refuses a stream past Config.MaxClients.
var errTooManyClients = errors.New("too many clients; try again later")

// countClosed counts a stream client closed or refused for reason.
func (s *Server) countClosed(reason string) {
	if s.metrics != nil && s.metrics.ClientsClosed != nil {
		s.metrics.ClientsClosed.WithLabelValues(reason).Inc()
	}
}

// clientGauge returns the connected-clients gauge for kind, or nil.
func (s *Server) clientGauge(kind string) prometheus.Gauge {
	if s.metrics == nil || s.metrics.Clients == nil {
		return nil
	}
	return s.metrics.Clients.WithLabelValues(kind)
}

// streamRequest is what a /sse or /ws request asks for.
type streamRequest struct {
	pattern string
	opts    publish.SubscribeOptions
	filter  *recordFilter // ?q=, ?level=; nil: every record
}

// filteredTailFactor is how many more records a filtered stream asks the bus
// for as its tail: the tail is taken before the filter.
const filteredTailFactor = 8

// parseStreamRequest reads the channel pattern, resume point and backfill
// of a streaming request. The Last-Event-ID header (sent by a reconnecting
// EventSource) takes precedence over ?since=, which takes precedence over
// ?tail=.
func parseStreamRequest(r *http.Request) (streamRequest, error) {
	q := r.URL.Query()
	// The path's pattern, or list of them ("web-*,db-1"), and every ?ch=.
	patterns := q["ch"]
	if p := r.PathValue("channel"); p != "" {
		patterns = append([]string{p}, patterns...)
	}
	req := streamRequest{pattern: strings.Join(patterns, ",")}
	if err := validatePattern(req.pattern); err != nil {
		return req, err
	}
	since := r.Header.Get("Last-Event-ID")
	if since == "" {
		since = q.Get("since")
	}
	if len(since) > maxIDLen || hasControl(since) {
		return req, fmt.Errorf("bad resume ID %.40q: at most %d printable bytes", since, maxIDLen)
	}
	req.opts.Since = since
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return req, fmt.Errorf("bad tail %.40q: want a whole number from 0 to %d", t, maxTail)
		}
		req.opts.Tail = min(n, maxTail)
	}
	req.opts.QueueSize = queueSize
	f, err := parseRecordFilter(q.Get("q"), q.Get("cs"), q.Get("level"))
	if err != nil {
		return req, err
	}
	if f != nil {
		req.filter = f
		req.opts.Tail = min(req.opts.Tail*filteredTailFactor, maxTail)
	}
	return req, nil
}

// validatePattern checks the channel patterns of a stream, joined by commas.
func validatePattern(p string) error {
	switch {
	case len(glob.Split(p)) == 0:
		return errors.New("no channel pattern: give one in the path (/sse/web-*) or in ?ch=")
	case len(p) > maxPatternLen:
		return fmt.Errorf("channel patterns longer than %d bytes", maxPatternLen)
	case hasControl(p):
		return errors.New("channel pattern contains control characters")
	}
	return nil
}

// hasControl reports whether s holds an ASCII control byte.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// openStream registers a streaming client (refused once the server is
// stopping) and subscribes it for as long as ctx lives (the stream's life,
// which may outlast the request's handler); it answers the request itself
// when it fails. On success the caller ends the stream with closeStream.
func (s *Server) openStream(ctx context.Context, w http.ResponseWriter, r *http.Request, req streamRequest) (publish.Subscription, bool) {
	user := userOf(r)
	pattern, ok := authorize(user, req.pattern)
	if !ok {
		http.Error(w, "403 forbidden: "+user.Name+" may not read channel "+req.pattern, http.StatusForbidden)
		return nil, false
	}
	if err := s.beginStream(); err != nil {
		if errors.Is(err, errTooManyClients) {
			s.countClosed(metrics.CloseMaxClients)
			if n, ok := s.refusedLog.Allow(); ok {
				s.log.Warn("stream refused: too many clients", slog.Int("max_clients", s.cfg.MaxClients),
					slog.String("remote", r.RemoteAddr), slog.Int64("suppressed", n))
			}
			w.Header().Set("Retry-After", "5")
		}
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return nil, false
	}
	req.opts.QueueBytes = s.cfg.ClientQueueBytes
	sub, err := s.bus.Subscribe(ctx, pattern, req.opts)
	if err != nil {
		s.endStream()
		s.log.Warn("subscribe failed", slog.String("pattern", req.pattern), slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		http.Error(w, "subscribe: "+err.Error(), http.StatusServiceUnavailable)
		return nil, false
	}
	if !user.All || req.filter != nil {
		sub = &filteredSubscription{Subscription: sub, user: user, filter: req.filter}
	}
	return sub, true
}

// closeStream ends what openStream started.
func (s *Server) closeStream(sub publish.Subscription) {
	sub.Close()
	s.endStream()
}
