package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// runJSON runs logbench in this process and decodes its JSON report.
func runJSON(t *testing.T, args ...string) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if code := run(ctx, append(args, "--json"), &out, &errOut); code != 0 {
		t.Fatalf("logbench %v exited %d\n%s", args, code, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	t.Logf("logbench %v:\n%s%s", args, out.String(), errOut.String())
	return rep
}

func group(t *testing.T, rep Report, name string) GroupReport {
	t.Helper()
	for _, g := range rep.Groups {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no group %q in %+v", name, rep.Groups)
	return GroupReport{}
}

func TestEndToEndEmbeddedTCPNoLoss(t *testing.T) {
	d := testsupport.StartDaemon(t)
	host := strings.TrimPrefix(d.HTTPURL, "http://")
	const count = 3000
	rep := runJSON(t, "--addr", d.SyslogAddr, "-c", "3", "--count", strconv.Itoa(count), "--kind", "mix", "--size", "300",
		"--sub-url", d.HTTPURL+"/sse/*", "--sub-url", "ws://"+host+"/ws/*", "--sub-url", d.HTTPURL+"/sse/*?format=ndjson",
		"-k", "2", "--pid", strconv.Itoa(d.PID()), "--idle-clients", "20", "--idle-timeout", "10s",
		"--metrics", d.HTTPURL+"/metrics")

	if rep.Load == nil || rep.Load.Lines != count || len(rep.Errors) > 0 {
		t.Fatalf("load %+v errors %v", rep.Load, rep.Errors)
	}
	g := group(t, rep, "sse")
	if g.Subscribers != 4 || g.Failed != 0 || g.Received != 4*count || g.Lost != 0 || g.Dups != 0 || g.Expected != count {
		t.Errorf("sse (event-stream and ndjson) %+v", g)
	}
	if g.Latency.Max <= 0 || g.Latency.P50 > g.Latency.P99 || g.Rate <= 0 {
		t.Errorf("sse figures %+v", g)
	}
	w := group(t, rep, "ws")
	if w.Subscribers != 2 || w.Failed != 0 || w.Received != 2*count || w.Lost != 0 || w.Dups != 0 {
		t.Errorf("ws %+v", w)
	}
	if len(rep.Procs) != 2 || rep.Procs[0].PID != d.PID() || rep.Procs[0].RSSPeakMiB <= 0 || rep.Procs[0].Error != "" ||
		rep.Procs[1].PID != os.Getpid() || rep.Procs[1].Name == "" {
		t.Errorf("procs %+v", rep.Procs)
	}
	published := 0.0
	for _, c := range rep.Counters {
		if c.Name == "logviewer_published_total" {
			published = c.Delta
		}
	}
	if published != count {
		t.Errorf("daemon published %v records during the load, want %d; counters %+v", published, count, rep.Counters)
	}
	if rep.Idle == nil || rep.Idle.Opened != 20 || rep.Idle.Error != "" || len(rep.Idle.Procs) != 1 {
		t.Errorf("idle %+v", rep.Idle)
	}
}

func TestEndToEndUDPAccountsForEveryLine(t *testing.T) {
	d := testsupport.StartDaemon(t)
	const count = 500
	rep := runJSON(t, "--addr", d.SyslogAddr, "--proto", "udp", "--count", strconv.Itoa(count), "--rate", "5000",
		"--kind", "headerless", "--sub-url", d.HTTPURL+"/sse/*", "--idle-timeout", "2s")
	g := group(t, rep, "sse")
	// UDP may lose datagrams; every line is either received once or counted lost.
	if g.Received == 0 || g.Received+g.Lost != count || g.Dups != 0 {
		t.Errorf("sse %+v", g)
	}
}

func TestEndToEndSlowClientIsToldItsDrops(t *testing.T) {
	d := testsupport.StartDaemon(t)
	// More lines than a subscriber queue holds, so the slow client must lose some.
	const count = 60000
	rep := runJSON(t, "--addr", d.SyslogAddr, "--count", strconv.Itoa(count), "--size", "1000",
		"--sub-url", d.HTTPURL+"/sse/*", "--slow-clients", "1", "--idle-timeout", "5s")
	fast, slow := group(t, rep, "sse"), group(t, rep, "sse-slow")
	// A reading client may lose lines too when it cannot keep up (under
	// -race it may not): whatever it lost, it must have been told.
	if fast.Received+fast.Lost != count || fast.Dropped != fast.Lost || fast.Dups != 0 {
		t.Errorf("reading client %+v", fast)
	}
	if slow.Lost == 0 || slow.Dropped != slow.Lost || slow.Received+slow.Lost != count {
		t.Errorf("slow client %+v: want losses, each one announced in a dropped notice", slow)
	}
}

func TestEndToEndRedisIngest(t *testing.T) {
	srv := testsupport.StartRedis(t)
	d := testsupport.StartDaemon(t, "--redis", srv.URL(), "--role", "ingest")
	const count = 5000
	rep := runJSON(t, "--addr", d.SyslogAddr, "-c", "2", "--count", strconv.Itoa(count),
		"--redis", srv.URL(), "--redis-pattern", "*", "--pid", strconv.Itoa(d.PID()), "--idle-timeout", "10s")
	g := group(t, rep, "redis")
	if g.Received != count || g.Lost != 0 || g.Dups != 0 {
		t.Errorf("redis %+v", g)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{name: "nothing to do", args: nil, code: 2},
		{name: "bad proto", args: []string{"--addr", "x:1", "--count", "1", "--proto", "sctp"}, code: 2},
		{name: "bad kind", args: []string{"--addr", "x:1", "--count", "1", "--kind", "cef"}, code: 2},
		{name: "no count", args: []string{"--addr", "x:1"}, code: 2},
		{name: "rate without duration", args: []string{"--addr", "x:1", "--rate", "10"}, code: 2},
		{name: "bad sub url", args: []string{"--sub-url", "ftp://x/"}, code: 2},
		{name: "bad pid", args: []string{"--sub-url", "http://x/", "--pid", "1,x"}, code: 2},
		{name: "slow without url", args: []string{"--addr", "x:1", "--count", "1", "--slow-clients", "1"}, code: 2},
		{name: "stray argument", args: []string{"--addr", "x:1", "--count", "1", "extra"}, code: 2},
		{name: "help", args: []string{"-h"}, code: 0},
		{name: "unreachable", args: []string{"--addr", "127.0.0.1:1", "--count", "1"}, code: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
		})
	}
}

// TestIdleWebSocketClients: --idle-url ws:// opens WebSocket streams that
// the daemon counts as connected clients.
func TestIdleWebSocketClients(t *testing.T) {
	d := testsupport.StartDaemon(t)
	host := strings.TrimPrefix(d.HTTPURL, "http://")
	rep := runJSON(t, "--idle-clients", "15", "--idle-url", "ws://"+host+"/ws/logbench-idle", "--pid", strconv.Itoa(d.PID()))
	if rep.Idle == nil || rep.Idle.Opened != 15 || rep.Idle.Error != "" || len(rep.Idle.Procs) != 1 {
		t.Fatalf("idle %+v", rep.Idle)
	}
}
