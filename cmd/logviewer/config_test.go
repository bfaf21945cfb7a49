package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.SyslogAddr == ":10514" && c.HTTPAddr == ":8080" && c.Group == "lr" && c.DNS &&
				c.MaxMessageSize == 64<<10 && c.History == 10000 && c.Role == roleAll && c.LogLevel == slog.LevelInfo &&
				c.BufferBytes == 64<<20 && c.UDPBuffer == 8<<20 && c.Hostname != "" && c.ChannelFrom == "host" && c.MultilineWait == 50*time.Millisecond
		}},
		{name: "history bytes", args: []string{"--history-bytes=1048576"}, check: func(c Config) bool { return c.HistoryBytes == 1<<20 }},
		{name: "history bytes too small", args: []string{"--history-bytes=1000"}, wantErr: "invalid --history-bytes"},
		{name: "plain syslog off needs tls", args: []string{"--syslog-addr=none"}, wantErr: "--syslog-addr none needs --syslog-tls-addr"},
		{name: "channel from app", args: []string{"--channel-from=app"}, check: func(c Config) bool { return c.ChannelFrom == "app" }},
		{name: "bad channel from", args: []string{"--channel-from=tag"}, wantErr: "invalid --channel-from"},
		{name: "multiline wait off", env: map[string]string{"LOGVIEWER_MULTILINE_WAIT": "0"},
			check: func(c Config) bool { return c.MultilineWait == 0 }},
		{name: "negative multiline wait", args: []string{"--multiline-wait=-1s"}, wantErr: "invalid --multiline-wait"},
		{name: "env sets a flag", env: map[string]string{"LOGVIEWER_HTTP_ADDR": "127.0.0.1:9"},
			check: func(c Config) bool { return c.HTTPAddr == "127.0.0.1:9" }},
		{name: "flag beats env", args: []string{"--http-addr=:1"}, env: map[string]string{"LOGVIEWER_HTTP_ADDR": ":2"},
			check: func(c Config) bool { return c.HTTPAddr == ":1" }},
		{name: "bool from env", env: map[string]string{"LOGVIEWER_DNS": "false", "LOGVIEWER_GELF_COMPAT": "true"},
			check: func(c Config) bool { return !c.DNS && c.GELFCompat }},
		{name: "origins split", args: []string{"--allow-origin", "https://a.example, https://b.example"},
			check: func(c Config) bool {
				return reflect.DeepEqual(c.AllowOrigins, []string{"https://a.example", "https://b.example"})
			}},
		{name: "gelf off by default, channel from host", check: func(c Config) bool {
			return c.GELFAddr == "" && c.ChannelFrom == channelFromHost
		}},
		{name: "gelf from env, channel from app", args: []string{"--channel-from=app"},
			env:   map[string]string{"LOGVIEWER_GELF_ADDR": ":12201"},
			check: func(c Config) bool { return c.GELFAddr == ":12201" && c.ChannelFrom == channelFromApp }},
		{name: "bad channel-from", args: []string{"--channel-from=container"}, wantErr: "invalid --channel-from"},
		{name: "syslog tls off by default", check: func(c Config) bool {
			return c.SyslogTLSAddr == "" && c.SyslogTLSCert == "" && c.SyslogClientCA == "" && c.TLSCert == ""
		}},
		{name: "syslog tls certificate defaults to the https one",
			args: []string{"--syslog-tls-addr=:6514", "--tls-cert=h.pem", "--tls-key=h-key.pem"},
			check: func(c Config) bool {
				return c.SyslogTLSAddr == ":6514" && c.SyslogTLSCert == "h.pem" && c.SyslogTLSKey == "h-key.pem"
			}},
		{name: "syslog tls certificate of its own", args: []string{"--syslog-tls-addr=:6514", "--tls-cert=h.pem",
			"--tls-key=h-key.pem", "--syslog-tls-cert=s.pem", "--syslog-tls-key=s-key.pem", "--syslog-client-ca=ca.pem"},
			check: func(c Config) bool {
				return c.SyslogTLSCert == "s.pem" && c.SyslogTLSKey == "s-key.pem" && c.TLSCert == "h.pem" && c.SyslogClientCA == "ca.pem"
			}},
		{name: "syslog tls from env", env: map[string]string{"LOGVIEWER_SYSLOG_TLS_ADDR": ":6514",
			"LOGVIEWER_SYSLOG_TLS_CERT": "s.pem", "LOGVIEWER_SYSLOG_TLS_KEY": "s-key.pem"},
			check: func(c Config) bool { return c.SyslogTLSAddr == ":6514" && c.SyslogTLSCert == "s.pem" }},
		{name: "client ca without tls addr", args: []string{"--syslog-client-ca=ca.pem", "--tls-cert=h.pem", "--tls-key=k.pem"},
			wantErr: "--syslog-client-ca needs --syslog-tls-addr"},
		{name: "tls addr without certificate", args: []string{"--syslog-tls-addr=:6514"}, wantErr: "needs a certificate"},
		{name: "tls addr with a certificate but no key", args: []string{"--syslog-tls-addr=:6514", "--syslog-tls-cert=s.pem"},
			wantErr: "needs a certificate"},
		{name: "log level", args: []string{"--log-level=debug"}, check: func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
		{name: "udp buffer", args: []string{"--udp-buffer=1048576"}, check: func(c Config) bool { return c.UDPBuffer == 1<<20 }},
		{name: "udp buffer from env", env: map[string]string{"LOGVIEWER_UDP_BUFFER": "0"}, check: func(c Config) bool { return c.UDPBuffer == 0 }},
		{name: "negative udp buffer", args: []string{"--udp-buffer=-1"}, wantErr: "invalid --udp-buffer"},
		{name: "history on disk off by default", check: func(c Config) bool {
			return c.DataDir == "" && c.RetentionBytes == 1<<30 && c.Retention == 7*24*time.Hour && c.Fsync == time.Second
		}},
		{name: "history on disk", args: []string{"--data-dir=/var/lib/logviewer", "--retention=3d", "--fsync=200ms"},
			env: map[string]string{"LOGVIEWER_RETENTION_BYTES": "2097152"},
			check: func(c Config) bool {
				return c.DataDir == "/var/lib/logviewer" && c.Retention == 72*time.Hour && c.Fsync == 200*time.Millisecond &&
					c.RetentionBytes == 2<<20
			}},
		{name: "retention in hours", args: []string{"--retention=36h"}, check: func(c Config) bool { return c.Retention == 36*time.Hour }},
		{name: "bad retention", args: []string{"--retention=7days"}, wantErr: "want whole days"},
		{name: "data dir with redis", args: []string{"--data-dir=d", "--redis=redis://x:6379/0"}, wantErr: "--data-dir is for the in-memory bus"},
		{name: "fsync zero", args: []string{"--fsync=0"}, wantErr: "invalid --fsync"},
		{name: "bad env value", env: map[string]string{"LOGVIEWER_HISTORY": "many"}, wantErr: "LOGVIEWER_HISTORY"},
		{name: "bad role", args: []string{"--role=both"}, wantErr: "invalid --role"},
		{name: "split role needs redis", args: []string{"--role=stream"}, wantErr: "needs --redis"},
		{name: "cluster needs redis", args: []string{"--redis-cluster"}, wantErr: "--redis-cluster needs --redis"},
		{name: "publish records needs redis", args: []string{"--redis-publish-records"}, wantErr: "--redis-publish-records needs --redis"},
		{name: "redis shards and cluster", args: []string{"--redis=redis://a:1,redis://b:2", "--redis-cluster", "--redis-publish-records"},
			check: func(c Config) bool { return c.RedisCluster && c.RedisRecords && c.Redis == "redis://a:1,redis://b:2" }},
		{name: "tiny max size", args: []string{"--max-message-size=1"}, wantErr: "max-message-size"},
		{name: "bad level", args: []string{"--log-level=loud"}, wantErr: "log-level"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "not defined"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			c, err := parseConfig(tc.args, getenv, &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{name: "bad flag", args: []string{"--history=x"}, wantCode: 2, wantOut: "invalid value"},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: 2, wantOut: "flag provided but not defined: -bogus"},
		{name: "stray argument", args: []string{"extra"}, wantCode: 2, wantOut: "unexpected argument"},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantOut: "-syslog-addr"},
		{name: "version", args: []string{"--version"}, wantCode: 0, wantOut: "logviewer"},
		{name: "taken http port", args: []string{"--syslog-addr=127.0.0.1:0", "--http-addr=" + taken.Addr().String()},
			wantCode: 1, wantOut: "address already in use"},
		{name: "taken gelf port", args: []string{"--syslog-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--gelf-addr=" + taken.Addr().String()},
			wantCode: 1, wantOut: "address already in use"},
		{name: "missing syslog tls certificate", args: []string{"--syslog-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0",
			"--syslog-tls-addr=127.0.0.1:0", "--syslog-tls-cert=/nonexistent/c.pem", "--syslog-tls-key=/nonexistent/k.pem"},
			wantCode: 1, wantOut: "syslog tls"},
		{name: "taken syslog port", args: []string{"--syslog-addr=" + taken.Addr().String(), "--http-addr=127.0.0.1:0"},
			wantCode: 1, wantOut: "address already in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), tc.args, func(string) string { return "" }, &out, &out)
			if code != tc.wantCode || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("code %d, output %q; want code %d and %q", code, out.String(), tc.wantCode, tc.wantOut)
			}
			if code != 0 && strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
				t.Fatalf("want one clear line on a bad command line or a failed start, got %q", out.String())
			}
		})
	}
}

// TestRunSyslogClientCANotPEM: a client CA file without a PEM certificate
// stops the start with one line.
func TestRunSyslogClientCANotPEM(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir)
	cert, key := ca.ServerCert(t, "server")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := run(context.Background(), []string{"--syslog-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0",
		"--syslog-tls-addr=127.0.0.1:0", "--tls-cert=" + cert, "--tls-key=" + key, "--syslog-client-ca=" + notPEM},
		func(string) string { return "" }, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "no PEM certificate") || strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
		t.Fatalf("code %d, output %q; want 1 and one line about the CA file", code, out.String())
	}
}

func TestConnectionBound(t *testing.T) {
	tests := []struct {
		configured int
		fileLimit  uint64
		want       int
	}{
		{8192, 1 << 20, 8192},
		{8192, 1024, 512},
		{100, 1024, 100},
		{8192, 1, 1},
	}
	for _, tc := range tests {
		if got := connectionBound(tc.configured, tc.fileLimit); got != tc.want {
			t.Errorf("connectionBound(%d, %d) = %d, want %d", tc.configured, tc.fileLimit, got, tc.want)
		}
	}
}

func TestGCFloorFor(t *testing.T) {
	for _, tc := range []struct {
		limit   int64
		fromEnv bool
		want    int64
	}{
		{1 << 30, false, maxGCFloor},
		{128 << 20, false, 16 << 20},
		{1 << 30, true, 0}, // GOGC set: it wins
	} {
		if got := gcFloorFor(tc.limit, tc.fromEnv); got != tc.want {
			t.Errorf("gcFloorFor(%d, %v) = %d, want %d", tc.limit, tc.fromEnv, got, tc.want)
		}
	}
}
