package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/logviewer/logviewer/internal/envflag"
)

// Config is everything fakelog is told by flags and FAKELOG_* variables.
type Config struct {
	Addr     string
	Proto    string
	App      string
	Format   string
	Rate     float64
	Count    int
	Seed     uint64
	Hostname string
	Dial     time.Duration // how long to keep retrying the first TCP connection
}

// Wire formats fakelog can send.
const (
	formatHeaderless = "headerless" // <PRI>app: text, as Python's SysLogHandler
	formatRFC3164    = "rfc3164"    // <PRI>Mmm dd hh:mm:ss host app[pid]: text
	formatRFC5424    = "rfc5424"    // <PRI>1 TIMESTAMP host app pid msgid - text
)

// parseConfig reads flags from args and, for every flag not given there,
// the environment variable FAKELOG_<NAME> (dashes as underscores).
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("fakelog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:10514", "syslog server host:port")
	fs.StringVar(&c.Proto, "proto", "tcp", "tcp or udp")
	fs.StringVar(&c.App, "app", "fakelog", "application name (the syslog TAG / APP-NAME)")
	fs.StringVar(&c.Format, "format", formatRFC3164, "headerless (Python's SysLogHandler), rfc3164 or rfc5424")
	fs.Float64Var(&c.Rate, "rate", 5, "lines per second")
	fs.IntVar(&c.Count, "count", 0, "stop after this many lines (0: run until SIGTERM)")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.StringVar(&c.Hostname, "hostname", "", "HOSTNAME in the header (default: this machine's)")
	fs.DurationVar(&c.Dial, "dial-timeout", 30*time.Second, "how long to retry the first TCP connection")

	if err := envflag.Parse(fs, args, "FAKELOG", getenv); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Hostname = h
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.Proto != "tcp" && c.Proto != "udp":
		return fmt.Errorf("invalid --proto %q: want tcp or udp", c.Proto)
	case c.Format != formatHeaderless && c.Format != formatRFC3164 && c.Format != formatRFC5424:
		return fmt.Errorf("invalid --format %q: want headerless, rfc3164 or rfc5424", c.Format)
	case !(c.Rate > 0) || c.Rate > 1e7:
		return fmt.Errorf("invalid --rate %v: want more than 0 and at most 1e7 lines/s", c.Rate)
	case c.Count < 0:
		return errors.New("invalid --count: want 0 (forever) or more")
	case c.App == "" || strings.ContainsAny(c.App, " :[]"):
		return fmt.Errorf("invalid --app %q: want a name without spaces, ':' or brackets", c.App)
	case c.Addr == "":
		return errors.New("invalid --addr: empty")
	}
	return nil
}
