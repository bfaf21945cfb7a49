package envflag

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantDNS  bool
		wantErr  string
	}{
		{name: "default", wantAddr: ":8080", wantDNS: true},
		{name: "from env", env: map[string]string{"APP_HTTP_ADDR": ":1", "APP_DNS": "false"}, wantAddr: ":1"},
		{name: "flag wins", args: []string{"--http-addr=:2"}, env: map[string]string{"APP_HTTP_ADDR": ":1"}, wantAddr: ":2", wantDNS: true},
		{name: "flag with separate value wins", args: []string{"-http-addr", ":3"}, env: map[string]string{"APP_HTTP_ADDR": ":1"}, wantAddr: ":3", wantDNS: true},
		{name: "bool flag named", args: []string{"--dns"}, env: map[string]string{"APP_DNS": "false"}, wantAddr: ":8080", wantDNS: true},
		{name: "bad env value", env: map[string]string{"APP_DNS": "maybe"}, wantErr: "APP_DNS"},
		{name: "bad flag", args: []string{"--nope"}, wantErr: "not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("app", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := fs.String("http-addr", ":8080", "")
			dns := fs.Bool("dns", true, "")
			err := Parse(fs, tc.args, "APP", func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || *addr != tc.wantAddr || *dns != tc.wantDNS {
				t.Fatalf("err %v, addr %q, dns %v; want %q, %v", err, *addr, *dns, tc.wantAddr, tc.wantDNS)
			}
		})
	}
}

func TestParseOutput(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for flag.ErrHelp
		wantOut string // "" for nothing printed
	}{
		{name: "bad flag prints nothing", args: []string{"--nope"}, wantErr: "flag provided but not defined: -nope (see -h)"},
		{name: "bad value prints nothing", args: []string{"--dns=maybe"}, wantErr: "invalid boolean value"},
		{name: "help prints the usage", args: []string{"-h"}, wantOut: "-http-addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			fs := flag.NewFlagSet("app", flag.ContinueOnError)
			fs.SetOutput(&out)
			fs.String("http-addr", ":8080", "listen address")
			fs.Bool("dns", true, "")
			err := Parse(fs, tc.args, "APP", func(string) string { return "" })
			if tc.wantErr == "" {
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("err = %v, want flag.ErrHelp", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line with %q", err, tc.wantErr)
			}
			if tc.wantOut == "" && out.Len() > 0 || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("printed %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}
