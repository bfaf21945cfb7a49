package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestRedisStopWithinGrace: an ingest node whose Redis hangs (SIGSTOP:
// connections open, no answers) while records wait still exits with
// status 0 within the 5 s grace of a stop: the bus's draining gets what is
// left of that deadline, not a timeout of its own on top.
func TestRedisStopWithinGrace(t *testing.T) {
	srv := testsupport.StartRedis(t)
	ingest := redisIngestNode(t, srv)
	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", "info:before")
	srv.Signal(t, syscall.SIGSTOP)
	defer srv.Signal(t, syscall.SIGCONT)
	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", "info:while Redis hangs 1", "info:while Redis hangs 2")
	// Both are queued: the writer is stuck sending them.
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return metricValue(t, ingest.HTTPURL, "logviewer_published_total") == 3
	}, "the lines were not queued")
	start := time.Now()
	ingest.Stop(t) // fails on a status other than 0
	if took := time.Since(start); took > 5500*time.Millisecond {
		t.Errorf("stop took %v with Redis hanging, want within the 5 s grace", took)
	}
}
