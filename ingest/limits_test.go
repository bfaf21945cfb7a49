package ingest

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// closedByServer reports whether the server closed c: a read ends with EOF
// (or a reset) rather than the deadline.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// TestConnectionLimits: past the per-address bound a connection is closed
// at once and counted; another address still gets in until the total bound;
// a closed connection frees its place.
func TestConnectionLimits(t *testing.T) {
	requireLoopbackAlias(t)
	ts := startServer(t, Config{MaxConnections: 3, MaxConnectionsPerAddr: 2}, nil)
	a1 := ts.dial(t, "tcp", "127.0.0.1")
	ts.dial(t, "tcp", "127.0.0.1")
	write(t, a1, "<14>first\n")
	ts.pub.wait(t, 1)
	testsupport.Eventually(t, waitFor, func() bool { return ts.value(t, "logviewer_ingest_connections", "tcp") == 2 },
		"two connections open")

	if c := ts.dial(t, "tcp", "127.0.0.1"); !closedByServer(t, c) {
		t.Fatal("a third connection from one address was kept")
	}
	b := ts.dial(t, "tcp", "127.0.0.2")
	if c := ts.dial(t, "tcp", "127.0.0.3"); !closedByServer(t, c) {
		t.Fatal("a fourth connection overall was kept")
	}
	if got := ts.value(t, "logviewer_ingest_rejected_total", "max_per_addr"); got != 1 {
		t.Errorf("rejected{max_per_addr} = %v, want 1", got)
	}
	if got := ts.value(t, "logviewer_ingest_rejected_total", "max_connections"); got != 1 {
		t.Errorf("rejected{max_connections} = %v, want 1", got)
	}
	write(t, b, "<14>from the second address\n")
	a1.Close()
	testsupport.Eventually(t, waitFor, func() bool { return ts.value(t, "logviewer_ingest_connections", "tcp") == 2 },
		"a closed connection frees its place")
	c := ts.dial(t, "tcp", "127.0.0.3")
	write(t, c, "<14>in again\n")
	c.Close()
	if recs := ts.pub.wait(t, 3); recs[2].msg() != "in again" && recs[1].msg() != "in again" {
		t.Errorf("records %v", recs)
	}
}

// TestIdleTimeout: a connection that sends nothing is closed after the idle
// timeout and counted; one that keeps sending stays.
func TestIdleTimeout(t *testing.T) {
	// The idle timeout is 50 times the busy sender's pace, so a loaded
	// machine cannot make the busy one look idle.
	ts := startServer(t, Config{IdleTimeout: 500 * time.Millisecond}, nil)
	silent := ts.dial(t, "tcp", "")
	busy := ts.dial(t, "tcp", "")
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		write(t, busy, "<14>still here\x00") // NUL: each message ends at once
		time.Sleep(10 * time.Millisecond)    // the sender's pace, not a wait for the server
	}
	if !closedByServer(t, silent) {
		t.Fatal("the silent connection is still open")
	}
	if got := ts.value(t, "logviewer_ingest_rejected_total", "idle"); got != 1 {
		t.Errorf("rejected{idle} = %v, want 1", got)
	}
	write(t, busy, "<14>last\n")
	_ = busy.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := busy.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
		t.Fatal("the busy connection was closed")
	}
}

// TestTCPFrameBudget: many connections each holding a long half message
// together stay within the frame budget; the messages that did not fit are
// cut and marked, the others whole, and every buffer is given back.
func TestTCPFrameBudget(t *testing.T) {
	const conns, size, budget = 20, 60_000, 256 << 10
	var srv *Server
	ts := startServer(t, Config{FrameBytes: budget}, func(s *Server) { srv = s })
	half := "<14>" + strings.Repeat("x", size)
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = ts.dial(t, "tcp", "")
		write(t, cs[i], half)
	}
	// The connections together want five times the budget: it fills up.
	testsupport.Eventually(t, waitFor, func() bool { return srv.frames.Used() > budget/2 },
		"the frame budget never filled: %v held", func() any { return srv.frames.Used() })
	if used := srv.frames.Used(); used > budget {
		t.Fatalf("%d bytes of frames held, budget %d", used, budget)
	}
	for _, c := range cs {
		write(t, c, "\n")
		c.Close()
	}
	recs := ts.pub.wait(t, conns)
	whole, cut := 0, 0
	for _, r := range recs {
		switch {
		case len(r.msg()) == size:
			whole++
		case r.fields["_truncated"] == true:
			cut++
		default:
			t.Errorf("a record of %d bytes, neither whole nor marked truncated", len(r.msg()))
		}
	}
	if whole == 0 || cut == 0 {
		t.Errorf("%d whole and %d cut; want some of each with a budget of %d for %d x %d bytes", whole, cut, budget, conns, size)
	}
	testsupport.Eventually(t, waitFor, func() bool { return srv.frames.Used() == 0 }, "frames given back: %v held",
		func() any { return srv.frames.Used() })
}

// TestGELFConnectionBounds: the GELF TCP receiver keeps the same bounds as
// syslog's: a connection past the per-address bound is closed and counted,
// and a silent one is closed after the idle timeout.
func TestGELFConnectionBounds(t *testing.T) {
	ts := startGELFServer(t, GELFConfig{MaxConnectionsPerAddr: 1, IdleTimeout: 300 * time.Millisecond}, nil)
	first := ts.dial(t, "tcp")
	if c := ts.dial(t, "tcp"); !closedByServer(t, c) {
		t.Fatal("a second connection from one address was kept")
	}
	if got := ts.value(t, "logviewer_ingest_rejected_total", "max_per_addr"); got != 1 {
		t.Errorf("rejected{max_per_addr} = %v, want 1", got)
	}
	if !closedByServer(t, first) {
		t.Fatal("the silent connection outlived the idle timeout")
	}
	if got := ts.value(t, "logviewer_ingest_rejected_total", "idle"); got != 1 {
		t.Errorf("rejected{idle} = %v, want 1", got)
	}
}
