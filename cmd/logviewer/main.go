// Command logviewer receives syslog on TCP and UDP, turns each message into
// GELF JSON and streams it live to browsers over WebSocket and SSE.
//
// Roles: "all" (default) runs ingest and stream in one process on the
// in-memory bus or Redis; "ingest" and "stream" split them over Redis.
package main

import (
	"context"
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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/logviewer/logviewer/ingest"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/publish"
	"github.com/logviewer/logviewer/stream"
	"github.com/logviewer/logviewer/transform"
)

// shutdownGrace bounds how long a stop may take after SIGTERM or SIGINT.
const shutdownGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
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

	bus, err := newBus(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	defer bus.Close() // on the early returns; Close is idempotent

	var syslogServer *ingest.Server
	if cfg.Role != roleStream {
		enc := &transform.Encoder{Hostname: cfg.Hostname, Group: cfg.Group, Compat: cfg.GELFCompat}
		syslogServer = ingest.NewServer(ingest.Config{
			Addr:           cfg.SyslogAddr,
			MaxMessageSize: cfg.MaxMessageSize,
			ResolveDNS:     cfg.DNS,
			UDPBuffer:      cfg.UDPBuffer,
			Logger:         log.With(slog.String("part", "ingest")),
		}, enc, bus, m)
		if err := syslogServer.Listen(); err != nil {
			return err
		}
	}
	httpServer := stream.NewServer(stream.Config{
		Addr:         cfg.HTTPAddr,
		AllowOrigins: cfg.AllowOrigins,
		Logger:       log.With(slog.String("part", "stream")),
	}, bus, m, reg)
	if err := httpServer.Listen(); err != nil {
		return err
	}
	var pprofListener net.Listener
	if cfg.PprofAddr != "" {
		if pprofListener, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			return fmt.Errorf("listen pprof %s: %w", cfg.PprofAddr, err)
		}
	}

	attrs := []any{slog.String("http", httpServer.Addr().String()), slog.String("role", cfg.Role),
		slog.String("bus", busName(cfg)), slog.String("version", version())}
	if syslogServer != nil {
		attrs = append(attrs, slog.String("syslog_tcp", syslogServer.TCPAddr().String()),
			slog.String("syslog_udp", syslogServer.UDPAddr().String()))
	}
	log.Info("listening", attrs...)

	g, gctx := errgroup.WithContext(ctx)
	// The stream stops after ingest has finished the lines it had read, so
	// that they are delivered to the clients before these are closed.
	streamCtx, stopStream := context.WithCancel(context.WithoutCancel(gctx))
	defer stopStream()
	if syslogServer != nil {
		g.Go(func() error {
			defer stopStream()
			return syslogServer.Serve(gctx)
		})
	} else {
		context.AfterFunc(gctx, stopStream)
	}
	g.Go(func() error { return httpServer.Serve(streamCtx) })
	if pprofListener != nil {
		g.Go(func() error { return servePprof(gctx, pprofListener) })
	}

	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		log.Info("stopping", slog.Duration("grace", shutdownGrace))
		select {
		case err = <-done:
		case <-time.After(shutdownGrace):
			return errors.New("stop took longer than " + shutdownGrace.String())
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	bus.Close() // delivers what it still holds, and says what it could not, before "stopped"
	log.Info("stopped")
	return nil
}

// newBus picks the bus: Redis when --redis is set, else the in-memory hub.
func newBus(ctx context.Context, cfg Config, log *slog.Logger, m *metrics.Metrics) (publish.Bus, error) {
	if cfg.Redis == "" {
		return publish.NewMemory(publish.MemoryConfig{History: cfg.History, Metrics: m}), nil
	}
	// go-redis logs through a package-level logger; it is set once here, in main.
	redis.SetLogger(redisLogger{log: log.With(slog.String("part", "go-redis"))})
	bus, err := publish.NewRedis(ctx, publish.RedisConfig{
		URL:           cfg.Redis,
		Role:          cfg.Role,
		History:       cfg.History,
		BufferBytes:   cfg.BufferBytes,
		ChannelPrefix: cfg.ChannelPrefix,
		Logger:        log.With(slog.String("part", "redis")),
		Metrics:       m,
	})
	if err != nil {
		return nil, fmt.Errorf("redis bus: %w", err)
	}
	return bus, nil
}

func busName(cfg Config) string {
	if cfg.Redis == "" {
		return "memory"
	}
	return "redis"
}

// servePprof serves the runtime profiles until ctx ends.
func servePprof(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof: %w", err)
	}
	return nil
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
