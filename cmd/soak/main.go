// Command soak runs the daemon under hostile load and checks that its
// memory stays within the bound its flags set (issue 11): for each attack
// it starts a fresh logviewer with small limits, runs the attack beside a
// well-behaved sender and SSE client, samples the daemon's RSS every
// second, and writes docs/RELIABILITY.md. scripts/soak.sh builds and runs it.
//
//	soak --logviewer ./logviewer --out docs/RELIABILITY.md [--quick] [--only big-lines,udp-stopped]
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
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// Config is what a soak run is told on the command line.
type Config struct {
	Logviewer string // the daemon's binary
	Out       string // the page to write
	WorkDir   string // daemon logs and heap profiles
	Command   string // the command line to name on the page
	Quick     bool
	Duration  time.Duration // per attack
	GoodRate  float64
	Only      map[string]bool
	NotesFile string          // the "What we found" section, read when the page is written
	DaemonEnv []string        // extra NAME=value for the daemon's environment
	CPUProf   time.Duration   // CPU profile of the daemon this long, CPUProfAt into each attack
	CPUProfAt time.Duration   // when the CPU profile starts
	MemLimit  map[string]bool // attacks to run again with GOMEMLIMIT set to the budgets' sum
	Limits    Limits
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q: want NAME=value", v)
	}
	*l = append(*l, v)
	return nil
}

// parseConfig reads the command line.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	c := Config{Limits: Limits{
		HistoryBytes: 64 << 20, ClientQueueBytes: 32 << 20, FrameBytes: 16 << 20,
		MaxConnections: 2000, MaxConnsPerAddr: 1024, MaxChannels: 2000, MaxClients: 3000,
		IdleTimeout: 20 * time.Second,
	}}
	var only string
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Logviewer, "logviewer", "logviewer", "the daemon's binary")
	fs.StringVar(&c.Out, "out", "docs/RELIABILITY.md", "the page to write")
	fs.StringVar(&c.WorkDir, "work", os.TempDir(), "directory for daemon logs and heap profiles")
	fs.StringVar(&c.Command, "command", "", "the command to name on the page (default: this one)")
	fs.BoolVar(&c.Quick, "quick", false, "each attack about 10 s instead of 40 s")
	fs.DurationVar(&c.Duration, "duration", 0, "each attack's length (default 40s, 10s with --quick)")
	fs.Float64Var(&c.GoodRate, "good-rate", 200, "the good sender's lines/s")
	var notes, memLimit string
	fs.StringVar(&memLimit, "memlimit-again", "", "comma-separated attacks to run a second time with the daemon's GOMEMLIMIT set to the sum of its budgets")
	var env stringList
	fs.Var(&env, "daemon-env", "NAME=value added to the daemon's environment, repeatable (e.g. GOMEMLIMIT=128MiB)")
	fs.DurationVar(&c.CPUProf, "cpu-profile", 0, "fetch a CPU profile of this length from each daemon, --cpu-profile-at into the attack, into --work")
	fs.DurationVar(&c.CPUProfAt, "cpu-profile-at", 2*time.Second, "when into the attack the CPU profile starts (0: as it starts, to see its first seconds)")
	fs.StringVar(&notes, "notes", "", "a Markdown file whose text becomes the page's \"What we found\" section")
	fs.StringVar(&only, "only", "", "comma-separated attacks to run (default: all)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.DaemonEnv = env
	c.NotesFile = notes
	if c.Duration == 0 {
		c.Duration = 40 * time.Second
		if c.Quick {
			c.Duration = 10 * time.Second
		}
	}
	if c.Command == "" {
		c.Command = "soak " + strings.Join(args, " ")
	}
	known := map[string]bool{}
	for _, a := range attacks() {
		known[a.key] = true
	}
	var err error
	if c.Only, err = attackSet("--only", only, known); err != nil {
		return c, err
	}
	if c.MemLimit, err = attackSet("--memlimit-again", memLimit, known); err != nil {
		return c, err
	}
	return c, nil
}

// attackSet parses a comma-separated list of attack names; nil when empty.
func attackSet(flagName, list string, known map[string]bool) (map[string]bool, error) {
	if list == "" {
		return nil, nil
	}
	set := map[string]bool{}
	for _, k := range strings.Split(list, ",") {
		if !known[k] {
			return nil, fmt.Errorf("%s %q: no such attack", flagName, k)
		}
		set[k] = true
	}
	return set, nil
}

// runLogged runs one attack and logs its outcome.
func runLogged(ctx context.Context, cfg Config, a attack, log *slog.Logger) attackResult {
	r := runAttack(ctx, cfg, a, log)
	log.Info("done", slog.String("attack", r.Key), slog.Int64("peak_kib", r.PeakKiB), slog.Int64("bound_kib", r.BoundKiB),
		slog.Int64("good_sent", r.Good.Sent), slog.Int64("good_lost", r.Good.Lost),
		slog.Duration("p99", r.Good.Latency.P99), slog.String("figure", r.Figure), slog.String("error", r.Err))
	return r
}

// run is the whole command; it returns the exit code: 0 when the page was
// written (whatever it says), 1 when the run failed, 2 for a bad command line.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 2
	}
	if n, err := raiseFileLimit(); err != nil {
		log.Warn("file limit", slog.Any("error", err))
	} else {
		log.Info("file limit", slog.Uint64("nofile", n))
	}
	started := time.Now()
	var results []attackResult
	for _, a := range attacks() {
		if cfg.Only != nil && !cfg.Only[a.key] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		results = append(results, runLogged(ctx, cfg, a, log))
	}
	// The same attacks again with the Go runtime told the budget: does the
	// garbage collector's headroom explain a peak above the bound?
	limit := memLimitBytes(cfg.Limits)
	again := cfg
	again.DaemonEnv = append(slices.Clone(cfg.DaemonEnv), fmt.Sprintf("GOMEMLIMIT=%d", limit))
	for _, a := range attacks() {
		if !cfg.MemLimit[a.key] || (cfg.Only != nil && !cfg.Only[a.key]) || ctx.Err() != nil {
			continue
		}
		a.key += "-memlimit"
		a.title += fmt.Sprintf(", again with `GOMEMLIMIT=%d` (%s)", limit, mib(limit>>10))
		results = append(results, runLogged(ctx, again, a, log))
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "soak: interrupted; page not written")
		return 1
	}
	var notes string
	if cfg.NotesFile != "" {
		b, err := os.ReadFile(cfg.NotesFile)
		if err != nil {
			fmt.Fprintf(stderr, "soak: notes: %v\n", err)
			return 1
		}
		notes = string(b)
	}
	page := renderPage(cfg, started, results, notes)
	if err := os.WriteFile(cfg.Out, []byte(page), 0o644); err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	log.Info("wrote", slog.String("page", cfg.Out))
	return 0
}
