// Command logviewer receives syslog on TCP and UDP, turns each message into
// GELF JSON and streams it live to browsers over WebSocket and SSE.
//
// Roles: "all" (default) runs ingest and stream in one process on the
// in-memory bus or Redis; "ingest" and "stream" split them over Redis.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/ingest"
	"github.com/logviewer/logviewer/internal/gcfloor"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/tlsfile"
	"github.com/logviewer/logviewer/publish"
	"github.com/logviewer/logviewer/stream"
	"github.com/logviewer/logviewer/transform"
)

// shutdownGrace bounds how long a stop may take after SIGTERM or SIGINT.
const shutdownGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// Past a file size limit a write fails with EFBIG instead of killing
	// the daemon: --data-dir then stops storing and streaming goes on.
	signal.Ignore(syscall.SIGXFSZ)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole daemon; it returns the process exit code: 0 after a clean
// stop, 1 when it could not start or failed, 2 for a bad command line.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "logviewer: %v\n", err)
		return 2
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "logviewer", version())
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := serve(ctx, cfg, log); err != nil {
		fmt.Fprintf(stderr, "logviewer: %v\n", err)
		return 1
	}
	return 0
}

// serve builds the parts the role needs, binds their sockets, and runs them
// until ctx ends.
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	var arch *archive.Archive
	if cfg.DataDir != "" {
		var err error
		if arch, err = archive.Open(archive.Config{Dir: cfg.DataDir, RetentionBytes: cfg.RetentionBytes,
			Retention: cfg.Retention, Fsync: cfg.Fsync, Logger: log.With(slog.String("part", "archive"))}); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		// After the bus's Close (deferred below, so run before this): the
		// last records published are written out and fsynced.
		defer arch.Close()
	}
	bus, err := newBus(ctx, cfg, log, m, arch)
	if err != nil {
		return err
	}
	defer bus.Close() // on the early returns; Close is idempotent

	fileLimit, err := raiseFileLimit()
	if err != nil {
		log.Warn("file limit not raised", slog.Any("error", err))
	}
	maxConns := connectionBound(cfg.MaxConnections, fileLimit)
	if cfg.GELFAddr != "" {
		maxConns = connectionBound(cfg.MaxConnections, fileLimit/2) // syslog and GELF share the half
	}
	memLimit := memoryLimit(cfg, maxConns, getenvGOMEMLIMIT())
	gcFloor := gcFloorFor(memLimit, os.Getenv("GOGC") != "")
	defer gcfloor.Start(gcFloor).Stop()

	var syslogServer *ingest.Server
	if cfg.Role != roleStream {
		enc := &transform.Encoder{Hostname: cfg.Hostname, Group: cfg.Group, Compat: cfg.GELFCompat}
		wait := cfg.MultilineWait
		if wait == 0 {
			wait = -1 // ingest's "off"; its 0 means its default
		}
		tlsConfig, err := syslogTLSConfig(cfg, log)
		if err != nil {
			return err
		}
		syslogServer = ingest.NewServer(ingest.Config{
			Addr:                  cfg.SyslogAddr,
			TLSAddr:               cfg.SyslogTLSAddr,
			TLS:                   tlsConfig,
			MaxMessageSize:        cfg.MaxMessageSize,
			ContinuationWait:      wait,
			ResolveDNS:            cfg.DNS,
			UDPBuffer:             cfg.UDPBuffer,
			ChannelFromApp:        cfg.ChannelFrom == channelFromApp,
			MaxConnections:        maxConns,
			MaxConnectionsPerAddr: cfg.MaxConnsPerAddr,
			IdleTimeout:           idleTimeout(cfg.IdleTimeout),
			FrameBytes:            cfg.FrameBytes,
			Logger:                log.With(slog.String("part", "ingest")),
		}, enc, bus, m)
		if err := syslogServer.Listen(); err != nil {
			return err
		}
	}
	var gelfServer *ingest.GELFServer
	if cfg.Role != roleStream && cfg.GELFAddr != "" {
		gelfServer = ingest.NewGELFServer(ingest.GELFConfig{
			Addr:                  cfg.GELFAddr,
			MaxMessageSize:        cfg.MaxMessageSize,
			ResolveDNS:            cfg.DNS,
			ChannelFromApp:        cfg.ChannelFrom == channelFromApp,
			MaxConnections:        maxConns,
			MaxConnectionsPerAddr: cfg.MaxConnsPerAddr,
			IdleTimeout:           idleTimeout(cfg.IdleTimeout),
			Logger:                log.With(slog.String("part", "gelf")),
		}, bus, m)
		if err := gelfServer.Listen(); err != nil {
			return err
		}
	}
	streamLog := log.With(slog.String("part", "stream"))
	streamCfg := stream.Config{
		Addr:         cfg.HTTPAddr,
		AllowOrigins: cfg.AllowOrigins,
		AllowHosts:   cfg.AllowHosts,
		MaxClients:   cfg.MaxClients,
		WSDeflate:    cfg.WSDeflate,
		Logger:       streamLog,
	}
	if cfg.TLSCert != "" {
		if streamCfg.TLS, err = tlsfile.Load(cfg.TLSCert, cfg.TLSKey, streamLog); err != nil {
			return err
		}
	}
	var users *auth.Users
	if cfg.AuthFile != "" {
		authLog := log.With(slog.String("part", "auth"))
		if users, err = auth.LoadUsers(cfg.AuthFile, authLog); err != nil {
			return err
		}
		if streamCfg.Auth, err = auth.New(auth.Config{
			Users:          users,
			ProxyHeader:    cfg.AuthProxyHeader,
			TrustedProxies: cfg.TrustedProxies,
			SecureCookie:   cfg.TLSCert != "",
			Logger:         authLog,
		}); err != nil {
			return err
		}
	}
	httpServer := stream.NewServer(streamCfg, bus, m, reg)
	if err := httpServer.Listen(); err != nil {
		return err
	}
	var pprofListener, metricsListener net.Listener
	if cfg.PprofAddr != "" {
		if pprofListener, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			return fmt.Errorf("listen pprof %s: %w", cfg.PprofAddr, err)
		}
	}
	if cfg.MetricsAddr != "" {
		if metricsListener, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen metrics %s: %w", cfg.MetricsAddr, err)
		}
	}

	attrs := []any{slog.String("http", httpServer.Addr().String()), slog.Bool("https", cfg.TLSCert != ""),
		slog.String("auth", authName(cfg)), slog.String("role", cfg.Role),
		slog.String("bus", busName(cfg)), slog.String("version", version())}
	if cfg.DataDir != "" {
		attrs = append(attrs, slog.String("data_dir", cfg.DataDir))
	}
	if metricsListener != nil {
		attrs = append(attrs, slog.String("metrics", metricsListener.Addr().String()))
	}
	if syslogServer != nil {
		attrs = append(attrs, slog.Uint64("nofile", fileLimit), slog.Int("max_connections", maxConns),
			slog.Int64("memory_limit", memLimit), slog.Int64("gc_floor", gcFloor))
		if a := syslogServer.TCPAddr(); a != nil {
			attrs = append(attrs, slog.String("syslog_tcp", a.String()), slog.String("syslog_udp", syslogServer.UDPAddr().String()))
		}
		if a := syslogServer.TLSAddr(); a != nil {
			attrs = append(attrs, slog.String("syslog_tls", a.String()))
		}
	}
	if gelfServer != nil {
		attrs = append(attrs, slog.String("gelf_tcp", gelfServer.TCPAddr().String()),
			slog.String("gelf_udp", gelfServer.UDPAddr().String()))
	}
	log.Info("listening", attrs...)

	g, gctx := errgroup.WithContext(ctx)
	// The stream stops after ingest has finished the lines it had read, so
	// that they are delivered to the clients before these are closed.
	streamCtx, stopStream := context.WithCancel(context.WithoutCancel(gctx))
	defer stopStream()
	if syslogServer != nil {
		// Both receivers stop on the same context; the stream stops once
		// both have handed over what they had read.
		var ingestWG sync.WaitGroup
		ingestWG.Add(1)
		if gelfServer != nil {
			ingestWG.Add(1)
			g.Go(func() error {
				defer ingestWG.Done()
				return gelfServer.Serve(gctx)
			})
		}
		go func() {
			ingestWG.Wait()
			stopStream()
		}()
		g.Go(func() error {
			defer ingestWG.Done()
			return syslogServer.Serve(gctx)
		})
	} else {
		context.AfterFunc(gctx, stopStream)
	}
	g.Go(func() error { return httpServer.Serve(streamCtx) })
	if pprofListener != nil {
		g.Go(func() error { return servePprof(gctx, pprofListener) })
	}
	if metricsListener != nil {
		g.Go(func() error { return serveMetrics(gctx, metricsListener, reg) })
	}
	if users != nil {
		g.Go(func() error { users.Watch(gctx.Done(), time.Second); return nil })
	}

	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	// One deadline for the whole stop: the parts, then the bus's draining.
	deadline := time.Now().Add(shutdownGrace)
	select {
	case err = <-done:
	case <-ctx.Done():
		log.Info("stopping", slog.Duration("grace", shutdownGrace))
		deadline = time.Now().Add(shutdownGrace)
		select {
		case err = <-done:
		case <-time.After(shutdownGrace):
			return errors.New("stop took longer than " + shutdownGrace.String())
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	// The bus delivers what it still holds, and says what it could not,
	// before "stopped", within what is left of the deadline.
	shutdownBus(bus, deadline.Add(-busCloseMargin))
	log.Info("stopped")
	return nil
}

// busCloseMargin is kept of the stop deadline for the bus to close its
// connections after it stopped draining.
const busCloseMargin = 250 * time.Millisecond

// shutdownBus closes bus, draining until deadline when the bus can (the
// Redis bus delivers its buffered records).
func shutdownBus(bus publish.Bus, deadline time.Time) {
	if s, ok := bus.(interface{ Shutdown(context.Context) error }); ok {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		s.Shutdown(ctx)
		return
	}
	bus.Close()
}

// syslogTLSConfig is the TLS configuration of --syslog-tls-addr: its
// certificate, reloaded when the files change, and with --syslog-client-ca
// the CAs whose client certificates are required. It is nil without
// --syslog-tls-addr.
func syslogTLSConfig(cfg Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.SyslogTLSAddr == "" {
		return nil, nil
	}
	cert, err := tlsfile.Load(cfg.SyslogTLSCert, cfg.SyslogTLSKey, log.With(slog.String("part", "syslog-tls")))
	if err != nil {
		return nil, fmt.Errorf("syslog tls: %w", err)
	}
	tc := cert.ServerConfig()
	if cfg.SyslogClientCA != "" {
		pem, err := os.ReadFile(cfg.SyslogClientCA)
		if err != nil {
			return nil, fmt.Errorf("syslog client ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("syslog client ca %s: no PEM certificate in it", cfg.SyslogClientCA)
		}
		tc.ClientAuth, tc.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	return tc, nil
}

// newBus picks the bus: Redis when --redis is set, else the in-memory hub.
func newBus(ctx context.Context, cfg Config, log *slog.Logger, m *metrics.Metrics, arch *archive.Archive) (publish.Bus, error) {
	if cfg.Redis == "" {
		mc := publish.MemoryConfig{History: cfg.History, HistoryBytes: cfg.HistoryBytes,
			MaxChannels: cfg.MaxChannels, ChannelTTL: cfg.ChannelTTL, QueueBudget: cfg.ClientQueueBytes, Metrics: m}
		if arch != nil {
			mc.Archive = arch
		}
		return publish.NewMemory(mc), nil
	}
	// go-redis logs through a package-level logger; it is set once here, in main.
	redis.SetLogger(redisLogger{log: log.With(slog.String("part", "go-redis"))})
	bus, err := publish.NewRedis(ctx, publish.RedisConfig{
		URL:            cfg.Redis,
		Role:           cfg.Role,
		History:        cfg.History,
		BufferBytes:    cfg.BufferBytes,
		QueueBudget:    cfg.ClientQueueBytes,
		ChannelPrefix:  cfg.ChannelPrefix,
		PublishRecords: cfg.RedisRecords,
		Cluster:        cfg.RedisCluster,
		Compat:         cfg.GELFCompat,
		Logger:         log.With(slog.String("part", "redis")),
		Metrics:        m,
	})
	if err != nil {
		return nil, fmt.Errorf("redis bus: %w", err)
	}
	return bus, nil
}

// fixedMemory is the part of the memory bound that no flag sets: the Go
// runtime's own, caches (an idle daemon's RSS is about 14 MB here, its
// code included).
const fixedMemory = 16 << 20

// perClientMemory is what a stream client costs beyond its queue when its
// writes block (a stuck reader): its 32 KiB write buffer, its batch of
// events, net/http's buffers and its goroutines' stacks (measured ~60 KiB
// by scripts/soak.sh). An idle client gives most of it back.
const perClientMemory = 64 << 10

// deflateContextMemory is what a WebSocket client with compression carried
// over from message to message holds: its flate writer and window.
const deflateContextMemory = 1300 << 10

// memoryLimit sets the Go runtime's soft memory limit to the bound the
// README states (history + client queues + frames + 4 KiB a connection +
// 64 KiB a stream client + a fixed part), so the garbage collector keeps the heap there instead of
// letting it grow to twice what is live; GOMEMLIMIT, when set, wins. It
// returns the limit in force.
func memoryLimit(cfg Config, maxConns int, fromEnv bool) int64 {
	if fromEnv {
		return debug.SetMemoryLimit(-1) // reads the one GOMEMLIMIT set
	}
	perClient := int64(perClientMemory)
	if cfg.WSDeflate == "context" {
		perClient += deflateContextMemory
	}
	limit := cfg.HistoryBytes + cfg.ClientQueueBytes + cfg.FrameBytes + 4<<10*int64(maxConns) +
		perClient*int64(cfg.MaxClients) + fixedMemory
	debug.SetMemoryLimit(limit)
	return limit
}

// maxGCFloor is the most heap the collector lets a small live heap grow to
// before it runs (see internal/gcfloor): a few tens of MiB that spare a
// busy daemon a hundred collections a second.
const maxGCFloor = 64 << 20

// gcFloorFor returns the heap floor for the memory limit: maxGCFloor, at
// most an eighth of the limit; 0 (none) when GOGC is set, which wins.
func gcFloorFor(memLimit int64, fromEnv bool) int64 {
	if fromEnv {
		return 0
	}
	return min(maxGCFloor, memLimit/8)
}

// getenvGOMEMLIMIT reports whether the environment sets the runtime's
// memory limit itself.
func getenvGOMEMLIMIT() bool { return os.Getenv("GOMEMLIMIT") != "" }

// idleTimeout maps --idle-timeout to ingest's: 0 (never) is its "< 0".
func idleTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// authName says how requests are authenticated, for the start log.
func authName(cfg Config) string {
	switch {
	case cfg.AuthProxyHeader != "":
		return "file+proxy"
	case cfg.AuthFile != "":
		return "file"
	}
	return "none"
}

func busName(cfg Config) string {
	if cfg.Redis == "" {
		return "memory"
	}
	return "redis"
}

// serveMetrics serves /metrics from reg, without authentication, until ctx
// ends: for a Prometheus on a private address.
func serveMetrics(ctx context.Context, l net.Listener, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return serveUntil(ctx, l, mux, "metrics")
}

// serveUntil serves h on l until ctx ends.
func serveUntil(ctx context.Context, l net.Listener, h http.Handler, what string) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// servePprof serves the runtime profiles until ctx ends.
func servePprof(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveUntil(ctx, l, mux, "pprof")
}

// version is the module version the binary was built from, with the VCS
// revision when known.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
