package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
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
