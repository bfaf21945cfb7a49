package testsupport

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binaries builds each command of this module at most once per test process.
var binaries struct {
	sync.Mutex
	dir   string
	built map[string]string
}

// Binary builds ./cmd/<name> of this module once per test process and
// returns the path of the executable.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	binaries.Lock()
	defer binaries.Unlock()
	if p, ok := binaries.built[name]; ok {
		return p
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "logviewer-test-bin-")
		if err != nil {
			tb.Fatalf("temp dir for binaries: %v", err)
		}
		binaries.dir = dir
		binaries.built = map[string]string{}
	}
	out := filepath.Join(binaries.dir, name)
	cmd := exec.Command("go", "build", "-o", out, "github.com/logviewer/logviewer/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build cmd/%s: %v\n%s", name, err, b)
	}
	binaries.built[name] = out
	return out
}

// LockedBuffer is a bytes.Buffer that several goroutines may write and
// read at once: a process's output while it runs, a test's log.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Daemon is a running logviewer process.
type Daemon struct {
	SyslogAddr string // 127.0.0.1:port, for TCP and UDP
	GELFAddr   string // GELF's host:port for TCP and UDP, from the "listening" line; "" without --gelf-addr
	HTTPURL    string // http://127.0.0.1:port, https:// with --tls-cert
	// SyslogTLSAddr is syslog over TLS's host:port, from the "listening"
	// line; "" without --syslog-tls-addr.
	SyslogTLSAddr string
	Cmd           *exec.Cmd

	stderr  *LockedBuffer
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// StartDaemon builds and starts logviewer with args on free loopback ports
// (unless args name --syslog-addr or --http-addr), waits until /healthz
// answers, and stops it when the test ends.
func StartDaemon(tb testing.TB, args ...string) *Daemon {
	tb.Helper()
	return StartDaemonEnv(tb, nil, args...)
}

// StartDaemonEnv is StartDaemon with env (KEY=value) added to the daemon's
// environment.
func StartDaemonEnv(tb testing.TB, env []string, args ...string) *Daemon {
	tb.Helper()
	return StartDaemonUnder(tb, nil, env, args...)
}

// StartDaemonUnder is StartDaemonEnv with the daemon run through the
// command prefix (e.g. prlimit --nofile=128:128), which must exec it.
func StartDaemonUnder(tb testing.TB, prefix, env []string, args ...string) *Daemon {
	tb.Helper()
	bin := Binary(tb, "logviewer")
	d := &Daemon{stderr: &LockedBuffer{}, exited: make(chan struct{})}
	syslogAddr, httpAddr := argValue(args, "syslog-addr"), argValue(args, "http-addr")
	if syslogAddr == "" {
		syslogAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
		args = append(args, "--syslog-addr="+syslogAddr)
	}
	if httpAddr == "" {
		httpAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
		args = append(args, "--http-addr="+httpAddr)
	}
	scheme := "http://"
	if argValue(args, "tls-cert") != "" {
		scheme = "https://"
	}
	d.SyslogAddr, d.HTTPURL = syslogAddr, scheme+httpAddr
	argv := append(append(slices.Clone(prefix), bin), args...)
	d.Cmd = exec.Command(argv[0], argv[1:]...)
	d.Cmd.Stdout = d.stderr
	d.Cmd.Stderr = d.stderr
	d.Cmd.Env = append(append(os.Environ(), "LOGVIEWER_LOG_LEVEL=debug"), env...)
	if err := d.Cmd.Start(); err != nil {
		tb.Fatalf("start logviewer: %v", err)
	}
	go func() {
		d.waitErr = d.Cmd.Wait()
		close(d.exited)
	}()
	tb.Cleanup(func() {
		d.kill()
		if tb.Failed() {
			tb.Logf("logviewer %v output:\n%s", args, d.Stderr())
		}
	})

	// The health check only waits for the daemon to serve; the tests check
	// its certificate themselves.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe only
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-d.exited:
			tb.Fatalf("logviewer %v exited at start: %v\n%s", args, d.waitErr, d.Stderr())
		default:
		}
		resp, err := client.Get(d.HTTPURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if argValue(args, "gelf-addr") != "" {
					d.GELFAddr = listeningAddr(tb, d.Stderr(), "gelf_tcp")
				}
				if argValue(args, "syslog-tls-addr") != "" {
					d.SyslogTLSAddr = listeningAddr(tb, d.Stderr(), "syslog_tls")
				}
				return d
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("logviewer %v not healthy after 15s: %v\n%s", args, err, d.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listeningAddr returns the address named key in the daemon's "listening"
// log line, which comes before /healthz answers.
func listeningAddr(tb testing.TB, log, key string) string {
	tb.Helper()
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=listening") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				return v
			}
		}
	}
	tb.Fatalf("no %s in the daemon's listening line:\n%s", key, log)
	return ""
}

// argValue returns the value of --name=value or --name value in args.
func argValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// PID is the daemon's process ID.
func (d *Daemon) PID() int { return d.Cmd.Process.Pid }

// Stderr is everything the daemon has logged so far.
func (d *Daemon) Stderr() string { return d.stderr.String() }

// Stop sends SIGTERM and waits for the daemon to exit; it fails the test
// unless the daemon exits 0 within 10 seconds.
func (d *Daemon) Stop(tb testing.TB) {
	tb.Helper()
	select {
	case <-d.exited:
	default:
		_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.kill()
		tb.Fatalf("logviewer did not stop within 10s after SIGTERM\n%s", d.Stderr())
	}
	if d.waitErr != nil {
		tb.Fatalf("logviewer exited with %v\n%s", d.waitErr, d.Stderr())
	}
}

// Exited is closed when the daemon process has ended.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

func (d *Daemon) kill() {
	d.once.Do(func() {
		select {
		case <-d.exited:
			return
		default:
		}
		_ = d.Cmd.Process.Kill()
		<-d.exited
	})
}
