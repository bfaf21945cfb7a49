package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/logviewer/logviewer/ingest"
	"github.com/logviewer/logviewer/internal/envflag"
)

// Config is everything the daemon is told by flags and LOGVIEWER_* variables.
type Config struct {
	SyslogAddr     string
	HTTPAddr       string
	Hostname       string
	Group          string
	GELFCompat     bool
	MaxMessageSize int
	History        int
	DNS            bool
	LogLevel       slog.Level
	Version        bool
	Redis          string
	Role           string
	ChannelPrefix  string
	BufferBytes    int
	UDPBuffer      int
	AllowOrigins   []string
	PprofAddr      string
}

// Roles the daemon can take.
const (
	roleAll    = "all"
	roleIngest = "ingest"
	roleStream = "stream"
)

// errHelp is returned when -h was asked for; the usage was printed already.
var errHelp = flag.ErrHelp

// parseConfig reads flags from args and, for every flag not given there,
// the environment variable LOGVIEWER_<NAME> (dashes as underscores).
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	var allowOrigins, logLevel string
	fs := flag.NewFlagSet("logviewer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.SyslogAddr, "syslog-addr", ":10514", "syslog listen address, TCP and UDP")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen address: viewer, /ws, /sse, /api, /metrics")
	fs.StringVar(&c.Hostname, "hostname", "", "the GELF \"host\" field (default: this machine's host name)")
	fs.StringVar(&c.Group, "group", "lr", "the GELF \"_group\" field")
	fs.BoolVar(&c.GELFCompat, "gelf-compat", false, "emit only the original rsyslog template's five fields")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", 64<<10, "bytes; longer messages are cut and marked _truncated")
	fs.IntVar(&c.History, "history", 10000, "records kept per channel for backfill and resume")
	fs.BoolVar(&c.DNS, "dns", true, "name channels by the reverse DNS of the sender (else its IP)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
	fs.StringVar(&c.Redis, "redis", "", "Redis URL (redis://[:password@]host:port/db, rediss:// for TLS); empty: in-memory bus")
	fs.StringVar(&c.Role, "role", roleAll, "all, ingest (syslog to bus) or stream (bus to HTTP); ingest and stream need --redis")
	fs.StringVar(&c.ChannelPrefix, "channel-prefix", "", "prefix of Redis channel and key names")
	fs.IntVar(&c.BufferBytes, "buffer", 64<<20, "bytes of records kept while Redis is unreachable; oldest dropped beyond")
	fs.IntVar(&c.UDPBuffer, "udp-buffer", ingest.DefaultUDPBuffer, "bytes of UDP socket receive buffer to ask the kernel for (0: its default)")
	fs.StringVar(&allowOrigins, "allow-origin", "", "comma-separated origins allowed to open /ws and /sse from a browser (* for any)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve net/http/pprof on this address (for profiling; off when empty)")

	if err := envflag.Parse(fs, args, "LOGVIEWER", getenv); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return c, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", logLevel)
	}
	for _, o := range strings.Split(allowOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowOrigins = append(c.AllowOrigins, o)
		}
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "logviewer"
		}
		c.Hostname = h
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.Role != roleAll && c.Role != roleIngest && c.Role != roleStream:
		return fmt.Errorf("invalid --role %q: want all, ingest or stream", c.Role)
	case c.Role != roleAll && c.Redis == "":
		return fmt.Errorf("--role %s needs --redis: the in-memory bus cannot cross processes", c.Role)
	case c.MaxMessageSize < 64 || c.MaxMessageSize > 16<<20:
		return fmt.Errorf("invalid --max-message-size %d: want 64 bytes to 16 MiB", c.MaxMessageSize)
	case c.History < 1:
		return errors.New("invalid --history: want at least 1")
	case c.BufferBytes < 0:
		return errors.New("invalid --buffer: want 0 or more bytes")
	case c.UDPBuffer < 0:
		return errors.New("invalid --udp-buffer: want 0 (the kernel's default) or more bytes")
	}
	return nil
}
