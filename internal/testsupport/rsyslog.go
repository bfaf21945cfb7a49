package testsupport

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Rsyslogd is an rsyslogd process started for one test, in the foreground,
// with its own work directory, pid file and rewritten configuration.
type Rsyslogd struct {
	// SyslogAddr is 127.0.0.1:port, where the config's inputs listen (TCP and UDP).
	SyslogAddr string
	// ConfPath is the rewritten configuration the daemon runs.
	ConfPath string
	// Dir is the daemon's work directory.
	Dir string
	Cmd *exec.Cmd

	out     *LockedBuffer
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// omhiredisGlobs are where Debian and other distributions put rsyslog's
// Redis output module.
var omhiredisGlobs = []string{
	"/usr/lib/x86_64-linux-gnu/rsyslog/omhiredis.so",
	"/usr/lib/*/rsyslog/omhiredis.so",
	"/usr/lib/rsyslog/omhiredis.so",
	"/usr/lib64/rsyslog/omhiredis.so",
}

// gtlsGlobs are where distributions put rsyslog's GnuTLS network stream
// driver (Debian: rsyslog-gnutls).
var gtlsGlobs = []string{
	"/usr/lib/*/rsyslog/lmnsd_gtls.so",
	"/usr/lib/rsyslog/lmnsd_gtls.so",
	"/usr/lib64/rsyslog/lmnsd_gtls.so",
}

// RewriteRsyslogConf sets parameters in an rsyslog configuration: for each
// name in vars, every `name="..."` assignment (the name not preceded by a
// letter, digit, dot or underscore, so "port" leaves "serverport" alone) gets
// the value vars[name]. A name that matches nothing is an error, so a config
// and the tests that rewrite it cannot drift apart silently.
func RewriteRsyslogConf(conf string, vars map[string]string) (string, error) {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		re, err := regexp.Compile(`(?i)(^|[^A-Za-z0-9._])(` + regexp.QuoteMeta(name) + `=")[^"]*(")`)
		if err != nil {
			return "", fmt.Errorf("rewrite %s: %w", name, err)
		}
		if !re.MatchString(conf) {
			return "", fmt.Errorf("rewrite %s: no %s=\"...\" in the config", name, name)
		}
		v := strings.ReplaceAll(vars[name], "$", "$$")
		conf = re.ReplaceAllString(conf, "${1}${2}"+v+"${3}")
	}
	return conf, nil
}

// StartRsyslogd runs rsyslogd (-n) with the configuration at
// confTemplatePath, rewritten by RewriteRsyslogConf with vars plus, unless
// vars set them, port = a free loopback port and address = 127.0.0.1. A
// global(workDirectory) line for its own temp directory is put first. The
// config is checked with rsyslogd -N1 first: any error fails the test. It
// waits until the TCP port accepts and stops the daemon when the test ends.
// When the config loads omhiredis and the module is not installed, the test
// fails under CI=true and is skipped elsewhere.
func StartRsyslogd(tb testing.TB, confTemplatePath string, vars map[string]string) *Rsyslogd {
	tb.Helper()
	RequireBinary(tb, "rsyslogd", "/usr/sbin/rsyslogd")
	raw, err := os.ReadFile(confTemplatePath)
	if err != nil {
		tb.Fatalf("read rsyslog config: %v", err)
	}
	if strings.Contains(string(raw), "omhiredis") {
		requireModule(tb, omhiredisGlobs, "omhiredis module", "rsyslog-hiredis")
	}
	all := map[string]string{}
	for k, v := range vars {
		all[k] = v
	}
	if _, ok := all["port"]; !ok {
		all["port"] = strconv.Itoa(FreePort(tb))
	}
	if _, ok := all["address"]; !ok {
		all["address"] = "127.0.0.1"
	}
	conf, err := RewriteRsyslogConf(string(raw), all)
	if err != nil {
		tb.Fatalf("rsyslog config %s: %v", confTemplatePath, err)
	}

	return RunRsyslogd(tb, conf, net.JoinHostPort(all["address"], all["port"]))
}

// RunRsyslogd runs rsyslogd (-n) with the configuration conf as it is, a
// global(workDirectory) line for its own temp directory put first, as
// StartRsyslogd does after its rewrite: for a config a test writes itself,
// such as one whose action has a port="..." of its own. syslogAddr is where
// one of its TCP inputs listens; it returns once that accepts.
func RunRsyslogd(tb testing.TB, conf, syslogAddr string) *Rsyslogd {
	tb.Helper()
	bin := RequireBinary(tb, "rsyslogd", "/usr/sbin/rsyslogd")
	if strings.Contains(strings.ToLower(conf), `"gtls"`) {
		requireModule(tb, gtlsGlobs, "GnuTLS stream driver", "rsyslog-gnutls")
	}
	dir := tb.TempDir()
	r := &Rsyslogd{
		SyslogAddr: syslogAddr,
		ConfPath:   filepath.Join(dir, "rsyslog.conf"),
		Dir:        dir,
		out:        &LockedBuffer{},
		exited:     make(chan struct{}),
	}
	conf = fmt.Sprintf("global(workDirectory=%q)\n", dir) + conf
	if err := os.WriteFile(r.ConfPath, []byte(conf), 0o644); err != nil {
		tb.Fatalf("write rsyslog config: %v", err)
	}

	check := exec.Command(bin, "-N1", "-f", r.ConfPath)
	out, err := check.CombinedOutput()
	if err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
		tb.Fatalf("rsyslogd -N1 -f %s: %v\n%s", r.ConfPath, err, out)
	}

	r.Cmd = exec.Command(bin, "-n", "-f", r.ConfPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.Cmd.Dir = dir
	r.Cmd.Stdout, r.Cmd.Stderr = r.out, r.out
	if err := r.Cmd.Start(); err != nil {
		tb.Fatalf("start rsyslogd: %v", err)
	}
	go func() {
		r.waitErr = r.Cmd.Wait()
		close(r.exited)
	}()
	tb.Cleanup(func() {
		r.stop()
		if tb.Failed() {
			tb.Logf("rsyslogd output:\n%s", r.Output())
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-r.exited:
			tb.Fatalf("rsyslogd exited at start: %v\n%s", r.waitErr, r.Output())
		default:
		}
		c, err := net.DialTimeout("tcp", r.SyslogAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("rsyslogd: %s not accepting after 15s: %v\n%s", r.SyslogAddr, err, r.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireModule fails (CI=true) or skips the test when none of globs
// matches an installed rsyslog module.
func requireModule(tb testing.TB, globs []string, what, pkg string) {
	tb.Helper()
	for _, g := range globs {
		if m, _ := filepath.Glob(g); len(m) > 0 {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("rsyslog %s not found in %v (CI=true: install %s, see scripts/test.sh)", what, globs, pkg)
	}
	tb.Skipf("rsyslog %s not found; install %s (scripts/test.sh does)", what, pkg)
}

// Output is everything rsyslogd has written to stdout and stderr so far.
func (r *Rsyslogd) Output() string { return r.out.String() }

// PID is the daemon's process ID.
func (r *Rsyslogd) PID() int { return r.Cmd.Process.Pid }

// Stop sends SIGTERM and waits up to 10 seconds for rsyslogd to exit, then
// kills it; it fails the test if rsyslogd had to be killed.
func (r *Rsyslogd) Stop(tb testing.TB) {
	tb.Helper()
	if !r.stop() {
		tb.Fatalf("rsyslogd did not stop within 10s after SIGTERM\n%s", r.Output())
	}
}

// stop ends the process once; it reports whether SIGTERM sufficed.
func (r *Rsyslogd) stop() bool {
	clean := true
	r.once.Do(func() {
		select {
		case <-r.exited:
			return
		default:
		}
		_ = r.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			clean = false
			_ = r.Cmd.Process.Kill()
			<-r.exited
		}
	})
	return clean
}
