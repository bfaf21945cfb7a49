package envflag

import (
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
