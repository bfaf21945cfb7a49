// Command logbench measures a syslog-to-browser pipeline end to end: it
// sends syslog lines (load), receives them over SSE, WebSocket or a Redis
// PSUBSCRIBE (receive), and reports throughput, loss, latency from send to
// receipt, and the CPU and memory of the processes named by --pid.
//
// Every line carries a run ID, its connection, a sequence number and its
// send time in its message text ("lb r=<run> c=<conn> s=<seq> t=<unix ns>"),
// so receivers count gaps and duplicates and ignore foreign lines.
//
//	logbench --addr 127.0.0.1:10514 -c 4 --count 1000000 --sub-url 'http://127.0.0.1:8080/sse/*'
//	logbench --addr 127.0.0.1:10514 --rate 10000 --duration 30s -k 10 \
//	    --sub-url 'http://127.0.0.1:8080/sse/*' --sub-url 'ws://127.0.0.1:8080/ws/*' --pid 1234
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/logviewer/logviewer/internal/envflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Config is everything a logbench run is told on the command line.
type Config struct {
	Label    string
	Run      string
	JSON     bool
	JSONFile string // also write the JSON report here

	Load loadConfig

	SubURLs      []string // http(s):// = SSE, ws(s):// = WebSocket
	Subscribers  int      // per URL (and per Redis URL)
	SlowClients  int      // extra subscribers on the first URL that stop reading during the load
	SlowPause    time.Duration
	RedisURL     string
	RedisPattern string

	IdleClients int
	IdleURL     string

	PIDs         []int
	MetricsURLs  []string      // Prometheus endpoints whose logviewer_*_total counters are reported
	ReadyTimeout time.Duration // for subscribers to connect and see a probe
	IdleTimeout  time.Duration // drain ends after this long without a new line
	DrainTimeout time.Duration // drain ends after this long in any case
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseConfig reads the command line.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	var c Config
	var subs, pids, metricsURLs stringList
	fs := flag.NewFlagSet("logbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Label, "label", "", "name of the run in the report")
	fs.StringVar(&c.Run, "run-id", "", "run ID carried by every line (default: random)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.JSONFile, "json-out", "", "also write the JSON report to this file")

	fs.StringVar(&c.Load.Addr, "addr", "", "syslog host:port to send to (no load when empty)")
	fs.StringVar(&c.Load.Proto, "proto", "tcp", "tcp or udp")
	fs.IntVar(&c.Load.Conns, "c", 1, "connections (one goroutine each)")
	fs.Uint64Var(&c.Load.Count, "count", 0, "lines to send in all (with --rate: at that rate)")
	fs.Float64Var(&c.Load.Rate, "rate", 0, "lines/s in all (0: as fast as possible)")
	fs.DurationVar(&c.Load.Duration, "duration", 0, "with --rate and no --count: how long to send; without --addr: how long to receive")
	fs.BoolVar(&c.Load.AppPerConn, "app-per-conn", false, "name each connection's app logbench-<n> (one channel per connection with the daemon's --channel-from app)")
	fs.StringVar(&c.Load.Kind, "kind", kindRFC3164, "headerless, rfc3164, rfc5424 or mix")
	fs.IntVar(&c.Load.Size, "size", 140, "approximate bytes per line")

	fs.Var(&subs, "sub-url", "stream URL to receive from, repeatable: http://host/sse/CHANNEL (SSE) or ws://host/ws/CHANNEL")
	fs.IntVar(&c.Subscribers, "k", 1, "subscribers per --sub-url (and per --redis)")
	fs.IntVar(&c.SlowClients, "slow-clients", 0, "extra subscribers on the first --sub-url that stop reading while the load runs")
	fs.DurationVar(&c.SlowPause, "slow-pause", 0, "how long slow clients stop reading after the load starts (0: until it ends)")
	fs.StringVar(&c.RedisURL, "redis", "", "Redis URL to PSUBSCRIBE on (redis://host:port), or several comma-separated (logviewer's shards) counted as one subscriber")
	fs.StringVar(&c.RedisPattern, "redis-pattern", "*", "PSUBSCRIBE pattern")

	fs.IntVar(&c.IdleClients, "idle-clients", 0, "extra SSE clients that connect and stay idle (memory per client)")
	fs.StringVar(&c.IdleURL, "idle-url", "", "SSE (http://) or WebSocket (ws://) URL for idle clients (default: SSE on the first http --sub-url's host, channel logbench-idle)")

	fs.Var(&metricsURLs, "metrics", "daemon /metrics URL, repeatable: report how its logviewer_*_total counters grew (where lost lines went)")
	fs.Var(&pids, "pid", "process to watch (CPU seconds, RSS), repeatable or comma-separated")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", 30*time.Second, "how long subscribers may take to connect and receive")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 3*time.Second, "stop waiting for lines after this long without a new one")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 60*time.Second, "stop waiting for lines after this long in any case")
	if err := envflag.ParseArgs(fs, args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.SubURLs = subs
	c.MetricsURLs = metricsURLs
	for _, p := range pids {
		for _, f := range strings.Split(p, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				return c, fmt.Errorf("--pid %q: not a process ID", f)
			}
			c.PIDs = append(c.PIDs, n)
		}
	}
	return c, c.validate()
}

// validate checks flag combinations.
func (c *Config) validate() error {
	l := &c.Load
	if l.Proto != "tcp" && l.Proto != "udp" {
		return fmt.Errorf("--proto %q: want tcp or udp", l.Proto)
	}
	switch l.Kind {
	case kindHeaderless, kindRFC3164, kindRFC5424, kindMix:
	default:
		return fmt.Errorf("--kind %q: want headerless, rfc3164, rfc5424 or mix", l.Kind)
	}
	if l.Conns < 1 || c.Subscribers < 0 || c.SlowClients < 0 || c.IdleClients < 0 {
		return errors.New("-c must be at least 1; -k, --slow-clients, --idle-clients not negative")
	}
	if l.Rate < 0 {
		return errors.New("--rate must not be negative")
	}
	if l.Addr != "" && l.total() == 0 {
		return errors.New("--addr needs --count, or --rate with --duration")
	}
	for _, u := range c.SubURLs {
		if subKind(u) == "" {
			return fmt.Errorf("--sub-url %q: want http://, https://, ws:// or wss://", u)
		}
	}
	if c.SlowClients > 0 && len(c.SubURLs) == 0 {
		return errors.New("--slow-clients needs a --sub-url")
	}
	if c.IdleClients > 0 && c.IdleURL == "" {
		for _, u := range c.SubURLs {
			if subKind(u) == subSSE && strings.HasPrefix(u, "http://") {
				c.IdleURL = idleURLFor(u)
				break
			}
		}
		if c.IdleURL == "" {
			return errors.New("--idle-clients needs --idle-url or an http:// --sub-url")
		}
	}
	if l.Addr == "" && len(c.SubURLs) == 0 && c.RedisURL == "" && c.IdleClients == 0 {
		return errors.New("nothing to do: give --addr, --sub-url, --redis or --idle-clients")
	}
	return nil
}

// subKind tells how a --sub-url is received.
func subKind(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return subSSE
	case strings.HasPrefix(u, "ws://"), strings.HasPrefix(u, "wss://"):
		return subWS
	}
	return ""
}

// idleURLFor returns an SSE URL on the same host as u for a channel that
// gets no lines, so idle clients stay idle.
func idleURLFor(u string) string {
	rest := strings.TrimPrefix(u, "http://")
	host, _, _ := strings.Cut(rest, "/")
	return "http://" + host + "/sse/logbench-idle"
}

// run is the whole command; it returns the exit code: 0 when the run
// completed (whatever it measured), 1 when it failed, 2 for a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "logbench: %v\n", err)
		return 2
	}
	if cfg.Run == "" {
		cfg.Run = newRunID()
	}
	cfg.Load.Run = cfg.Run
	rep, err := bench(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "logbench: %v\n", err)
		return 1
	}
	if cfg.JSONFile != "" {
		if err := writeJSONFile(cfg.JSONFile, rep); err != nil {
			fmt.Fprintf(stderr, "logbench: %v\n", err)
			return 1
		}
	}
	if cfg.JSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "logbench: %v\n", err)
		return 1
	}
	return 0
}

// newRunID returns 8 hex digits that tell this run's lines from others'.
func newRunID() string {
	return strings.ToLower(rand.Text()[:8])
}

// writeJSONFile writes the JSON report to path.
func writeJSONFile(path string, rep *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	if err := rep.writeJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("json report %s: %w", path, err)
	}
	return nil
}
