// Command fakelog is an application that only logs: realistic lines of mixed
// severity (web requests, database queries, cache lookups, worker jobs,
// logins, now and then a warning or an error) sent through syslog at a steady
// rate. It is the proof of concept's fakelog_a/fakelog_b, for demos and tests.
//
//	fakelog --addr logviewer:10514 --proto tcp --app shop --rate 20
//
// Every flag can also be set as FAKELOG_<NAME> (FAKELOG_RATE=20). It stops
// after --count lines, or on SIGTERM/SIGINT, and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 when done or
// stopped, 1 when the server cannot be reached, 2 for a bad command line.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fakelog: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s, err := dial(ctx, cfg.Proto, cfg.Addr, cfg.Dial)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintf(stderr, "fakelog: %v\n", err)
		return 1
	}
	defer s.close()
	log.Info("logging", slog.String("addr", cfg.Addr), slog.String("proto", cfg.Proto),
		slog.String("app", cfg.App), slog.String("format", cfg.Format), slog.Float64("rate", cfg.Rate))
	sent, lost := emit(ctx, cfg, s, newGenerator(seed), newFramer(cfg, os.Getpid()), log)
	log.Info("stopped", slog.Int("sent", sent), slog.Int("lost", lost))
	return 0
}

// emit sends lines at cfg.Rate until cfg.Count lines were produced or ctx
// ends. It returns how many were written and how many were lost to a broken
// TCP connection.
func emit(ctx context.Context, cfg Config, s *sender, g *generator, f *framer, log *slog.Logger) (sent, lost int) {
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	interval = min(max(interval, time.Millisecond), 100*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()

	start := time.Now()
	produced := 0
	var lastErrLog time.Time
	for {
		now := time.Now()
		due := int(cfg.Rate*now.Sub(start).Seconds()) + 1
		if cfg.Count > 0 {
			due = min(due, cfg.Count)
		}
		var err error
		for ; produced < due; produced++ {
			if err == nil {
				err = s.write(f.frame(g.next(), now))
			}
			if err != nil {
				lost++
				continue
			}
			sent++
		}
		if err == nil {
			err = s.flush()
		}
		if err != nil {
			if now.Sub(lastErrLog) >= time.Second {
				log.Warn("syslog server unreachable, reconnecting", slog.String("error", err.Error()), slog.Int("lost", lost))
				lastErrLog = now
			}
			_ = s.reconnect(ctx)
		}
		if cfg.Count > 0 && produced >= cfg.Count {
			return sent, lost
		}
		select {
		case <-ctx.Done():
			_ = s.flush()
			return sent, lost
		case <-tick.C:
		}
	}
}
