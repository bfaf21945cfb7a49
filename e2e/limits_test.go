package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestConnectionLimitKeepsHTTP: under a file limit of 128 the daemon takes
// at most 64 syslog connections; past them new ones are closed and counted,
// while /healthz, the stream and UDP syslog go on working.
func TestConnectionLimitKeepsHTTP(t *testing.T) {
	prlimit := testsupport.RequireBinary(t, "prlimit")
	d := testsupport.StartDaemonUnder(t, []string{prlimit, "--nofile=128:128"}, nil, "--dns=false")
	if !strings.Contains(d.Stderr(), "nofile=128 max_connections=64") {
		t.Fatalf("start log does not say the bound: %s", d.Stderr())
	}
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 100 {
		c, err := net.DialTimeout("tcp", d.SyslogAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return metricValue(t, d.HTTPURL, `logviewer_ingest_rejected_total{reason="max_connections"}`) >= 30
	}, "connections past the bound were not refused: %v", func() any {
		return metricValue(t, d.HTTPURL, `logviewer_ingest_rejected_total{reason="max_connections"}`)
	})
	resp, err := http.Get(d.HTTPURL + "/healthz")
	if err != nil {
		t.Fatalf("/healthz with syslog at its bound: %v", err)
	}
	resp.Body.Close()
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "over udp while tcp is full"))
	if f := sse.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "over udp while tcp is full" {
		t.Fatalf("record %v", f)
	}
	// A connection that got in still works.
	fmt.Fprintf(conns[0], "<14>over tcp\n")
	conns[0].Close()
	if f := sse.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "over tcp" {
		t.Fatalf("record %v", f)
	}
}

// TestUDPKernelDropsCounted: while the daemon is stopped (SIGSTOP) a UDP
// flood overflows its socket buffer; once it runs again, /metrics counts
// what the kernel dropped, and received + dropped = sent.
func TestUDPKernelDropsCounted(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--udp-buffer=65536")
	if err := d.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = d.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	const flood = 3000
	lines := make([]string, flood)
	for i := range lines {
		lines[i] = fmt.Sprintf("<14>flood %d", i)
	}
	sendSyslogUDP(t, "", d.SyslogAddr, lines...)
	if err := d.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	// The kernel's count rides on the datagrams received after the drops.
	sent := flood
	testsupport.Eventually(t, 10*time.Second, func() bool {
		sendSyslogUDP(t, "", d.SyslogAddr, "<14>probe")
		sent++
		return metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="udp_kernel"}`) > 0
	}, "no kernel drops counted")
	testsupport.Eventually(t, 10*time.Second, func() bool {
		received := metricValue(t, d.HTTPURL, `logviewer_ingest_lines_total{transport="udp"}`)
		dropped := metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="udp_kernel"}`)
		return received+dropped == float64(sent)
	}, "received + dropped != sent %d", sent)
	if !strings.Contains(d.Stderr(), "the kernel dropped UDP datagrams") {
		t.Errorf("the drops were not logged")
	}
}
