// Package testsupport starts the real programs that tests talk to (the
// logviewer daemon, redis-server, rsyslogd, chromium) on free loopback ports,
// and finds the binaries they need: under CI=true a missing one fails the
// test instead of skipping it.
package testsupport

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// RequireBinary returns the path of the first of names found on PATH (or as
// an absolute path). When none is found the test fails under CI=true and is
// skipped elsewhere.
func RequireBinary(tb testing.TB, names ...string) string {
	tb.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("required binary %v not found (CI=true: install it, see scripts/test.sh)", names)
	}
	tb.Skipf("binary %v not found; run scripts/test.sh to install it", names)
	return ""
}

// FreePort returns a loopback port that is free for both TCP and UDP now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	tb.Fatalf("free port: no port free for both TCP and UDP")
	return 0
}

// Eventually polls cond every 10ms until it is true or timeout passes, then
// fails the test with msg formatted with args. An argument of type
// func() any is called then, so that the message shows the state at the
// deadline rather than before the wait.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			vals := []any{timeout}
			for _, a := range args {
				if later, ok := a.(func() any); ok {
					a = later()
				}
				vals = append(vals, a)
			}
			tb.Fatalf("after %v: "+msg, vals...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
