package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// wire patterns of one message (without framing) per format.
var wire = map[string]*regexp.Regexp{
	formatHeaderless: regexp.MustCompile(`^<(\d+)>shop: (\S.*)$`),
	formatRFC3164:    regexp.MustCompile(`^<(\d+)>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d fakehost shop\[\d+\]: (\S.*)$`),
	formatRFC5424:    regexp.MustCompile(`^<(\d+)>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d) fakehost shop \d+ (?:WEB|DB|CACHE|JOB|AUTH|SYS) - (\S.*)$`),
}

// collector receives syslog frames on a loopback TCP or UDP socket.
type collector struct {
	mu     sync.Mutex
	frames []string
	addr   string
}

func (c *collector) add(f string) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
}

func (c *collector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

// listen starts a collector; TCP frames are split by the framing the format
// must use (NUL, LF or octet counting), so a wrong framing fails the test.
func listen(t *testing.T, proto, format string) *collector {
	t.Helper()
	c := &collector{}
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
		c.addr = pc.LocalAddr().String()
		go func() {
			buf := make([]byte, 65536)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				c.add(string(buf[:n]))
			}
		}()
		return c
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c.addr = l.Addr().String()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go c.readTCP(t, conn, format)
		}
	}()
	return c
}

func (c *collector) readTCP(t *testing.T, conn net.Conn, format string) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		var frame string
		var err error
		switch format {
		case formatHeaderless:
			frame, err = r.ReadString(0)
			frame = strings.TrimSuffix(frame, "\x00")
		case formatRFC3164:
			frame, err = r.ReadString('\n')
			frame = strings.TrimSuffix(frame, "\n")
		case formatRFC5424:
			var count string
			count, err = r.ReadString(' ')
			if err != nil {
				return
			}
			n, cerr := strconv.Atoi(strings.TrimSuffix(count, " "))
			if cerr != nil {
				t.Errorf("octet count %q: %v", count, cerr)
				return
			}
			b := make([]byte, n)
			_, err = io.ReadFull(r, b)
			frame = string(b)
		}
		if err != nil {
			return
		}
		c.add(frame)
	}
}

func TestSendsEveryFormat(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		for _, format := range []string{formatHeaderless, formatRFC3164, formatRFC5424} {
			t.Run(proto+" "+format, func(t *testing.T) {
				c := listen(t, proto, format)
				// UDP has no flow control: a slower pace keeps the
				// receiver's socket buffer from overflowing.
				n, rate := 300, "20000"
				if proto == "udp" {
					n, rate = 150, "1000"
				}
				var stderr bytes.Buffer
				code := run(context.Background(), []string{"--addr", c.addr, "--proto", proto, "--format", format,
					"--app", "shop", "--hostname", "fakehost", "--rate", rate, "--count", strconv.Itoa(n), "--seed", "7"},
					func(string) string { return "" }, &stderr)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				testsupport.Eventually(t, 5*time.Second, func() bool { return len(c.snapshot()) >= n },
					"want %d frames, got %d", n, func() any { return len(c.snapshot()) })
				frames := c.snapshot()
				if len(frames) != n {
					t.Fatalf("got %d frames, want %d", len(frames), n)
				}
				severities := map[int]int{}
				for _, f := range frames {
					if proto == "udp" && format == formatHeaderless {
						if !strings.HasSuffix(f, "\x00") {
							t.Fatalf("header-less datagram %q lacks Python's trailing NUL", f)
						}
						f = strings.TrimSuffix(f, "\x00")
					}
					m := wire[format].FindStringSubmatch(f)
					if m == nil {
						t.Fatalf("frame %q does not match %s", f, wire[format])
					}
					pri, _ := strconv.Atoi(m[1])
					if pri/8 != facilityUser {
						t.Errorf("frame %q: facility %d, want user", f, pri/8)
					}
					severities[pri%8]++
				}
				// A mix: informational lines dominate, warnings and errors occur.
				if len(severities) < 4 || severities[sevInfo] == 0 || severities[sevWarning] == 0 || severities[sevErr] == 0 {
					t.Errorf("severities %v: want a mix with info, warning and err", severities)
				}
				if severities[sevInfo]+severities[sevDebug] < n/2 {
					t.Errorf("severities %v: want mostly info and debug", severities)
				}
			})
		}
	}
}

func TestStopsWhenCancelled(t *testing.T) {
	c := listen(t, "tcp", formatRFC3164)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--addr", c.addr, "--rate", "200"}, func(string) string { return "" }, &stderr)
	}()
	testsupport.Eventually(t, 5*time.Second, func() bool { return len(c.snapshot()) >= 3 }, "no lines arrived")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fakelog did not stop after its context ended")
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("no stop summary in %q", stderr.String())
	}
}

func TestReconnectsAfterServerRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	var mu sync.Mutex
	got := 0
	serve := func(l net.Listener) {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}()
		}
	}
	go serve(l)
	count := func() int { mu.Lock(); defer mu.Unlock(); return got }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr, "--rate", "500"}, func(string) string { return "" }, io.Discard)
	}()
	testsupport.Eventually(t, 5*time.Second, func() bool { return count() > 0 }, "no lines before the restart")

	// The server goes away and comes back on the same port: fakelog must
	// keep running and deliver to the new listener.
	l.Close()
	before := count()
	var l2 net.Listener
	testsupport.Eventually(t, 5*time.Second, func() bool {
		l2, err = net.Listen("tcp", addr)
		return err == nil
	}, "port %s not free again: %v", addr, func() any { return err })
	defer l2.Close()
	go serve(l2)
	testsupport.Eventually(t, 10*time.Second, func() bool { return count() > before+20 }, "no lines after the restart")
	select {
	case code := <-done:
		t.Fatalf("fakelog exited (%d) while the server restarted", code)
	default:
	}
	cancel()
	<-done
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantErr  string
		wantRate float64
		wantFmt  string
	}{
		{name: "defaults", wantRate: 5, wantFmt: formatRFC3164},
		{name: "env", env: map[string]string{"FAKELOG_RATE": "40", "FAKELOG_FORMAT": "rfc5424"}, wantRate: 40, wantFmt: formatRFC5424},
		{name: "flag beats env", args: []string{"--rate=9"}, env: map[string]string{"FAKELOG_RATE": "40"}, wantRate: 9, wantFmt: formatRFC3164},
		{name: "bad proto", args: []string{"--proto", "sctp"}, wantErr: "invalid --proto"},
		{name: "bad format", args: []string{"--format", "json"}, wantErr: "invalid --format"},
		{name: "zero rate", args: []string{"--rate", "0"}, wantErr: "invalid --rate"},
		{name: "negative count", args: []string{"--count", "-1"}, wantErr: "invalid --count"},
		{name: "app with space", args: []string{"--app", "my app"}, wantErr: "invalid --app"},
		{name: "bad env", env: map[string]string{"FAKELOG_COUNT": "many"}, wantErr: "FAKELOG_COUNT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Rate != tc.wantRate || c.Format != tc.wantFmt {
				t.Errorf("rate %v format %q, want %v %q", c.Rate, c.Format, tc.wantRate, tc.wantFmt)
			}
		})
	}
}

func TestBadCommandLineExits2(t *testing.T) {
	if code := run(context.Background(), []string{"--proto", "x"}, func(string) string { return "" }, io.Discard); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

func TestUnreachableServerExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--addr", addr, "--dial-timeout", "100ms"}, func(string) string { return "" }, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr.String())
	}
}
