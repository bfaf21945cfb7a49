package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/ingest"
	"github.com/logviewer/logviewer/internal/envflag"
)

// Config is everything the daemon is told by flags and LOGVIEWER_* variables.
type Config struct {
	SyslogAddr       string
	HTTPAddr         string
	Hostname         string
	Group            string
	GELFCompat       bool
	MaxMessageSize   int
	History          int
	HistoryBytes     int64
	MaxClients       int
	WSDeflate        string
	ClientQueueBytes int64
	MaxConnections   int
	MaxConnsPerAddr  int
	IdleTimeout      time.Duration
	FrameBytes       int64
	MaxChannels      int
	ChannelTTL       time.Duration
	DNS              bool
	LogLevel         slog.Level
	Version          bool
	Redis            string // one URL, or several comma-separated: shards
	RedisRecords     bool   // --redis-publish-records: also PUBLISH each record on its channel
	RedisCluster     bool   // --redis-cluster: the --redis URLs are seed nodes of a Redis Cluster
	Role             string
	ChannelPrefix    string
	BufferBytes      int
	UDPBuffer        int
	AllowOrigins     []string
	PprofAddr        string
	ChannelFrom      string         // channelFromHost or channelFromApp
	MultilineWait    time.Duration  // 0: every LF ends a TCP message
	GELFAddr         string         // GELF listen address, TCP and UDP; empty: off
	TLSCert          string         // PEM certificate for HTTPS; plain HTTP when empty
	TLSKey           string         // PEM key of TLSCert
	AuthFile         string         // users file (htpasswd bcrypt + channel globs); empty: no authentication
	AuthProxyHeader  string         // user name header of a forward-auth proxy
	TrustedProxies   []netip.Prefix // where AuthProxyHeader is honoured from
	AllowHosts       []string       // Host names served without authentication, besides IPs and localhost
	MetricsAddr      string         // a listener of its own for /metrics, without authentication
	SyslogTLSAddr    string         // syslog over TLS (RFC 5425) listen address; empty: off
	SyslogTLSCert    string         // PEM certificate of SyslogTLSAddr; TLSCert when not given
	SyslogTLSKey     string         // PEM key of SyslogTLSCert; TLSKey when not given
	SyslogClientCA   string         // PEM CA certificates; when set, syslog TLS clients need a certificate they signed
	DataDir          string         // history on disk (in-memory bus); empty: in memory only
	RetentionBytes   int64          // bytes of history kept in DataDir
	Retention        time.Duration  // age of history kept in DataDir
	Fsync            time.Duration  // how often DataDir's records are written out and fsynced
}

// What a record's channel is named by (--channel-from): the sending host,
// or the app the record names (syslog APP-NAME or TAG; GELF
// _container_name, _app or facility), the host when it names none.
const (
	channelFromHost = "host"
	channelFromApp  = "app"
)

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
	var allowOrigins, logLevel, trustedProxies, allowHosts string
	c.Retention = archive.DefaultRetention
	fs := flag.NewFlagSet("logviewer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.SyslogAddr, "syslog-addr", ":10514", "syslog listen address, TCP and UDP; none: only --syslog-tls-addr")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen address: viewer, /ws, /sse, /api, /metrics")
	fs.StringVar(&c.Hostname, "hostname", "", "the GELF \"host\" field (default: this machine's host name)")
	fs.StringVar(&c.Group, "group", "lr", "the GELF \"_group\" field")
	fs.BoolVar(&c.GELFCompat, "gelf-compat", false, "emit only the original rsyslog template's five fields")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", 64<<10, "bytes; longer messages are cut and marked _truncated (GELF records: dropped)")
	fs.IntVar(&c.History, "history", 10000, "records kept per channel for backfill and resume")
	fs.IntVar(&c.MaxConnections, "max-connections", 8192, "syslog TCP and TLS connections open at once (at most half the file limit); past it a new one is closed")
	fs.IntVar(&c.MaxConnsPerAddr, "max-connections-per-addr", 1024, "syslog TCP and TLS connections open at once from one address")
	fs.Int64Var(&c.FrameBytes, "frame-bytes", 64<<20, "bytes of partial messages buffered over all syslog TCP and TLS connections beyond 4 KiB each; a message needing more is cut and marked _truncated")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 10*time.Minute, "close a syslog connection that completed no message for this long; 0: never")
	fs.Int64Var(&c.ClientQueueBytes, "client-queue-bytes", 256<<20, "bytes of records queued for all stream clients together; past it the clients furthest behind lose their oldest records first")
	fs.IntVar(&c.MaxClients, "max-clients", 10000, "stream clients (SSE and WebSocket) open at once; past it 503 with Retry-After")
	fs.StringVar(&c.WSDeflate, "ws-deflate", "off", "WebSocket permessage-deflate for clients that offer it: off, message (each message alone: 0.73x the bytes, ~12x the CPU) or context (0.27x the bytes, ~4x the CPU, ~1.2 MiB a client)")
	fs.IntVar(&c.MaxChannels, "max-channels", 10000, "channels known at once (in-memory bus); a new channel's records past it are dropped and counted")
	fs.DurationVar(&c.ChannelTTL, "channel-ttl", 24*time.Hour, "forget a channel with no history left and no record for this long (in-memory bus); 0: never")
	fs.Int64Var(&c.HistoryBytes, "history-bytes", 256<<20, "bytes of records kept for backfill and resume over all channels (in-memory bus); the largest channels' oldest go first")
	fs.BoolVar(&c.DNS, "dns", true, "name channels by the reverse DNS of the sender (else its IP)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
	fs.StringVar(&c.Redis, "redis", "", "Redis URL (redis://[:password@]host:port/db, rediss:// for TLS), or several comma-separated as shards; empty: in-memory bus")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false, "the --redis URLs are seed nodes of one Redis Cluster (channels spread over its masters by hash slot)")
	fs.BoolVar(&c.RedisRecords, "redis-publish-records", false, "also PUBLISH each record's GELF on its channel, as the proof of concept's rsyslog did (costs Redis CPU per record)")
	fs.StringVar(&c.Role, "role", roleAll, "all, ingest (syslog to bus) or stream (bus to HTTP); ingest and stream need --redis")
	fs.StringVar(&c.ChannelPrefix, "channel-prefix", "", "prefix of Redis channel and key names")
	fs.IntVar(&c.BufferBytes, "buffer", 64<<20, "bytes of records kept while Redis is unreachable; oldest dropped beyond")
	fs.IntVar(&c.UDPBuffer, "udp-buffer", ingest.DefaultUDPBuffer, "bytes of UDP socket receive buffer to ask the kernel for (0: its default)")
	fs.StringVar(&allowOrigins, "allow-origin", "", "comma-separated origins allowed to open /ws and /sse from a browser (* for any)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve net/http/pprof on this address (for profiling; off when empty)")
	fs.StringVar(&c.ChannelFrom, "channel-from", channelFromHost,
		"name channels by the sending host, or by the app (syslog APP-NAME/TAG; GELF _container_name, _app or facility; the host when a record names none)")
	fs.DurationVar(&c.MultilineWait, "multiline-wait", 50*time.Millisecond,
		"how long a TCP message ended by LF waits for a next line that may continue it (a traceback); 0: every LF ends a message")
	fs.StringVar(&c.GELFAddr, "gelf-addr", "", "GELF listen address, TCP and UDP (conventionally :12201); off when empty")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate for HTTPS (reloaded when it changes); plain HTTP when empty")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.AuthFile, "auth-file", "", "users file: htpasswd -nbB lines, each with an optional :glob,glob of the channels the user reads; empty: no authentication")
	fs.StringVar(&c.AuthProxyHeader, "auth-proxy-header", "", "header naming the user of a forward-auth proxy (e.g. Remote-User), honoured from --trusted-proxies only")
	fs.StringVar(&trustedProxies, "trusted-proxies", "", "comma-separated CIDRs or addresses whose --auth-proxy-header is believed")
	fs.StringVar(&allowHosts, "allow-host", "", "comma-separated Host names (or *.domain, or *) served without authentication besides IP literals and localhost")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address too, without authentication (e.g. 127.0.0.1:9100)")
	fs.StringVar(&c.SyslogTLSAddr, "syslog-tls-addr", "", "syslog over TLS (RFC 5425) listen address (conventionally :6514); off when empty")
	fs.StringVar(&c.SyslogTLSCert, "syslog-tls-cert", "", "PEM certificate of --syslog-tls-addr (default: --tls-cert); reloaded when it changes")
	fs.StringVar(&c.SyslogTLSKey, "syslog-tls-key", "", "PEM key of --syslog-tls-cert (default: --tls-key)")
	fs.StringVar(&c.SyslogClientCA, "syslog-client-ca", "",
		"PEM CA certificates: syslog TLS clients must present a certificate one of them signed; its CN is the record's _tls_peer")

	fs.StringVar(&c.DataDir, "data-dir", "", "keep the history on disk in this directory, across restarts, and search it (in-memory bus); empty: in memory only")
	fs.Int64Var(&c.RetentionBytes, "retention-bytes", archive.DefaultRetentionBytes, "bytes of history kept in --data-dir; the oldest segments are deleted beyond")
	fs.Var((*days)(&c.Retention), "retention", "age of history kept in --data-dir (e.g. 7d, 36h); older segments are deleted")
	fs.DurationVar(&c.Fsync, "fsync", archive.DefaultFsync, "how often records are written out to --data-dir and fsynced: what a crash may lose")

	if err := envflag.Parse(fs, args, "LOGVIEWER", getenv); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	var err error
	if err = c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return c, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", logLevel)
	}
	for _, o := range strings.Split(allowOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowOrigins = append(c.AllowOrigins, o)
		}
	}
	if c.SyslogTLSCert == "" && c.SyslogTLSKey == "" {
		c.SyslogTLSCert, c.SyslogTLSKey = c.TLSCert, c.TLSKey
	}
	if c.TrustedProxies, err = auth.ParsePrefixes(trustedProxies); err != nil {
		return c, fmt.Errorf("invalid --trusted-proxies: %w", err)
	}
	for _, h := range strings.Split(allowHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.AllowHosts = append(c.AllowHosts, h)
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
	case c.MaxChannels < 1:
		return errors.New("invalid --max-channels: want at least 1")
	case c.ChannelTTL < 0:
		return errors.New("invalid --channel-ttl: want 0 (never) or more")
	case c.MaxConnections < 1 || c.MaxConnsPerAddr < 1:
		return errors.New("invalid --max-connections or --max-connections-per-addr: want at least 1")
	case c.FrameBytes < 1<<20:
		return fmt.Errorf("invalid --frame-bytes %d: want at least 1 MiB", c.FrameBytes)
	case c.IdleTimeout < 0:
		return errors.New("invalid --idle-timeout: want 0 (never) or more")
	case c.ClientQueueBytes < 1<<20:
		return fmt.Errorf("invalid --client-queue-bytes %d: want at least 1 MiB", c.ClientQueueBytes)
	case c.MaxClients < 1:
		return errors.New("invalid --max-clients: want at least 1")
	case c.WSDeflate != "off" && c.WSDeflate != "message" && c.WSDeflate != "context":
		return fmt.Errorf("invalid --ws-deflate %q: want off, message or context", c.WSDeflate)
	case c.HistoryBytes < 1<<20:
		return fmt.Errorf("invalid --history-bytes %d: want at least 1 MiB", c.HistoryBytes)
	case c.RedisCluster && c.Redis == "":
		return errors.New("--redis-cluster needs --redis: its seed nodes")
	case c.RedisRecords && c.Redis == "":
		return errors.New("--redis-publish-records needs --redis")
	case c.BufferBytes < 0:
		return errors.New("invalid --buffer: want 0 or more bytes")
	case c.ChannelFrom != channelFromHost && c.ChannelFrom != channelFromApp:
		return fmt.Errorf("invalid --channel-from %q: want host or app", c.ChannelFrom)
	case c.MultilineWait < 0 || c.MultilineWait > 10*time.Second:
		return fmt.Errorf("invalid --multiline-wait %v: want 0 (off) to 10s", c.MultilineWait)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.AuthProxyHeader != "" && c.AuthFile == "":
		return errors.New("--auth-proxy-header needs --auth-file: it says which channels each user reads")
	case c.AuthProxyHeader != "" && len(c.TrustedProxies) == 0:
		return errors.New("--auth-proxy-header needs --trusted-proxies: anyone could send the header otherwise")
	case c.SyslogAddr == ingest.NoPlainAddr && c.SyslogTLSAddr == "":
		return errors.New("--syslog-addr none needs --syslog-tls-addr: syslog must come in somewhere")
	case c.SyslogClientCA != "" && c.SyslogTLSAddr == "":
		return errors.New("--syslog-client-ca needs --syslog-tls-addr")
	case c.SyslogTLSAddr != "" && (c.SyslogTLSCert == "" || c.SyslogTLSKey == ""):
		return errors.New("--syslog-tls-addr needs a certificate and its key: --syslog-tls-cert and --syslog-tls-key, or --tls-cert and --tls-key")
	case c.DataDir != "" && c.Redis != "":
		return errors.New("--data-dir is for the in-memory bus: with --redis the history lives in Redis's streams")
	case c.RetentionBytes < 1<<20:
		return fmt.Errorf("invalid --retention-bytes %d: want at least 1 MiB", c.RetentionBytes)
	case c.Retention < time.Minute:
		return fmt.Errorf("invalid --retention %v: want at least 1m", c.Retention)
	case c.Fsync < time.Millisecond || c.Fsync > time.Minute:
		return fmt.Errorf("invalid --fsync %v: want 1ms to 1m", c.Fsync)
	case c.UDPBuffer < 0:
		return errors.New("invalid --udp-buffer: want 0 (the kernel's default) or more bytes")
	}
	return nil
}

// days is a flag.Value of a duration that also takes whole days ("7d").
type days time.Duration

func (d *days) String() string {
	if d == nil {
		return ""
	}
	v := time.Duration(*d)
	if v%(24*time.Hour) == 0 && v > 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return fmt.Errorf("want whole days (7d) or a duration (36h): %w", err)
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want whole days (7d) or a duration (36h): %w", err)
	}
	*d = days(v)
	return nil
}
