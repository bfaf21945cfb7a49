package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
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
				c.BufferBytes == 64<<20 && c.UDPBuffer == 8<<20 && c.Hostname != ""
		}},
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
		{name: "log level", args: []string{"--log-level=debug"}, check: func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
		{name: "udp buffer", args: []string{"--udp-buffer=1048576"}, check: func(c Config) bool { return c.UDPBuffer == 1<<20 }},
		{name: "udp buffer from env", env: map[string]string{"LOGVIEWER_UDP_BUFFER": "0"}, check: func(c Config) bool { return c.UDPBuffer == 0 }},
		{name: "negative udp buffer", args: []string{"--udp-buffer=-1"}, wantErr: "invalid --udp-buffer"},
		{name: "bad env value", env: map[string]string{"LOGVIEWER_HISTORY": "many"}, wantErr: "LOGVIEWER_HISTORY"},
		{name: "bad role", args: []string{"--role=both"}, wantErr: "invalid --role"},
		{name: "split role needs redis", args: []string{"--role=stream"}, wantErr: "needs --redis"},
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
