package ingest

import (
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
)

func TestNULFramer(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		max    int
		want   []string // "!" for a frame too long
		oneBye bool     // read one byte at a time
	}{
		{name: "frames", input: "a\x00bc\x00", max: 10, want: []string{"a", "bc"}},
		{name: "empty frames skipped", input: "\x00\x00a\x00\x00", max: 10, want: []string{"a"}},
		{name: "last frame without NUL", input: "a\x00tail", max: 10, want: []string{"a", "tail"}},
		{name: "exactly max", input: "12345\x00x\x00", max: 5, want: []string{"12345", "x"}},
		{name: "too long in one read", input: "123456\x00x\x00", max: 5, want: []string{"!", "x"}},
		{name: "too long across reads", input: "123456789\x00x\x00", max: 5, want: []string{"!", "x"}, oneBye: true},
		{name: "frames across reads", input: "abc\x00de\x00", max: 5, want: []string{"abc", "de"}, oneBye: true},
		{name: "too long at the end", input: "x\x00123456", max: 5, want: []string{"x", "!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tc.input)
			if tc.oneBye {
				r = iotest.OneByteReader(r)
			}
			f := newNULFramer(r, tc.max)
			f.buf = make([]byte, 4) // small, so frames span reads
			var got []string
			for {
				frame, tooLong, err := f.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if tooLong {
					got = append(got, "!")
				} else {
					got = append(got, string(frame))
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if f.n != int64(len(tc.input)) {
				t.Fatalf("counted %d bytes read, want %d", f.n, len(tc.input))
			}
		})
	}
}

// gelfTestServer is a running GELFServer with its publisher and metrics.
type gelfTestServer struct {
	*GELFServer
	pub  *collector
	reg  *prometheus.Registry
	stop func()
}

// startGELFServer listens on a free loopback port and serves until the test
// ends; configure, if given, runs before Serve.
func startGELFServer(t *testing.T, cfg GELFConfig, configure func(*GELFServer)) *gelfTestServer {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	pub := &collector{}
	reg := prometheus.NewRegistry()
	s := NewGELFServer(cfg, pub, metrics.New(reg))
	if configure != nil {
		configure(s)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	stop := serveInBackground(t, s.Serve)
	return &gelfTestServer{GELFServer: s, pub: pub, reg: reg, stop: stop}
}

func (ts *gelfTestServer) value(t testing.TB, name, label string) float64 {
	t.Helper()
	return (&testServer{reg: ts.reg}).value(t, name, label)
}

// dial connects to the server over network from the local IP from (none
// for any).
func (ts *gelfTestServer) dial(t *testing.T, network string, from ...string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: waitFor}
	addr := ts.TCPAddr().String()
	if network == "udp" {
		addr = ts.UDPAddr().String()
	}
	if len(from) > 0 {
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(from[0])}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from[0])}
		}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGELFServer(t *testing.T) {
	ts := startGELFServer(t, GELFConfig{MaxMessageSize: 64 << 10}, nil)
	if ts.TCPAddr().(*net.TCPAddr).Port != ts.UDPAddr().(*net.UDPAddr).Port {
		t.Fatalf("TCP %v and UDP %v on different ports", ts.TCPAddr(), ts.UDPAddr())
	}
	u := ts.dial(t, "udp")
	write(t, u, `{"version":"1.1","host":"h","short_message":"plain udp","level":6}`)
	write(t, u, string(gzipped(t, `{"short_message":"gzip udp"}`)))
	write(t, u, string(zlibbed(t, `{"short_message":"zlib udp"}`, zlib.DefaultCompression)))
	big := `{"short_message":"chunked udp","full_message":"` + strings.Repeat("0123456789", 2000) + `"}`
	chunks := splitChunks("chunked!", []byte(big), 1000)
	rand.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
	for _, c := range chunks {
		write(t, u, string(c))
	}
	write(t, u, `{"short_message":`)                         // invalid
	write(t, u, string(gelfChunk("bad", 5, 2, []byte("x")))) // invalid chunk

	c := ts.dial(t, "tcp")
	write(t, c, `{"short_message":"tcp one"}`+"\x00"+`{"short_message":"`+strings.Repeat("y", 70<<10)+`"}`+"\x00",
		`{"short_message":"tcp two"}`+"\x00")

	recs := ts.pub.wait(t, 6)
	byMsg := map[string]record{}
	for _, r := range recs {
		byMsg[r.msg()] = r
	}
	for _, m := range []string{"plain udp", "gzip udp", "zlib udp", "chunked udp", "tcp one", "tcp two"} {
		r, ok := byMsg[m]
		if !ok {
			t.Fatalf("no record %q in %v", m, recs)
		}
		if r.channel != "127.0.0.1" && r.channel != "localhost" {
			t.Errorf("%s: channel %q", m, r.channel)
		}
	}
	if f := byMsg["chunked udp"].fields; f["full_message"] != strings.Repeat("0123456789", 2000) {
		t.Errorf("chunked message not whole: %d bytes of full_message", len(f["full_message"].(string)))
	}
	if f := byMsg["plain udp"].fields; f["host"] != "h" || f["level"] != 6.0 {
		t.Errorf("plain udp fields: %v", f)
	}
	testsupport.Eventually(t, waitFor, func() bool {
		return ts.value(t, "logviewer_dropped_total", "gelf_invalid") == 2 &&
			ts.value(t, "logviewer_dropped_total", "gelf_too_large") == 1
	}, "2 invalid, 1 too large")
	if n := ts.value(t, "logviewer_ingest_lines_total", "gelf-udp"); n != 5 {
		t.Errorf("gelf-udp lines = %v, want 5 (whole messages)", n)
	}
	if n := ts.value(t, "logviewer_ingest_lines_total", "gelf-tcp"); n != 3 {
		t.Errorf("gelf-tcp lines = %v, want 3", n)
	}
	if n := ts.value(t, "logviewer_ingest_bytes_total", "gelf-tcp"); n < 70<<10 {
		t.Errorf("gelf-tcp bytes = %v", n)
	}
	if n := ts.value(t, "logviewer_ingest_connections", "gelf-tcp"); n != 1 {
		t.Errorf("gelf-tcp connections = %v, want 1", n)
	}
	if len(ts.pub.all()) != 6 {
		t.Errorf("published %d records, want 6", len(ts.pub.all()))
	}
}

// TestGELFSlowResolver: while one peer's name lookup hangs, another peer's
// records go through; once it answers, the held peer's UDP records arrive
// in order under its name, and its TCP records too.
func TestGELFSlowResolver(t *testing.T) {
	requireLoopbackAlias(t)
	release := make(chan struct{})
	ts := startGELFServer(t, GELFConfig{ResolveDNS: true}, func(s *GELFServer) {
		s.names.wait = time.Hour // held until released, however slow the machine
		fakeDNS(s.names, release, map[string]string{"127.0.0.1": "fast.test"})
	})
	slowUDP := ts.dial(t, "udp", "127.0.0.2")
	slowTCP := ts.dial(t, "tcp", "127.0.0.2")
	for i := range 5 {
		write(t, slowUDP, fmt.Sprintf(`{"short_message":"slow udp %d"}`, i))
	}
	write(t, slowTCP, `{"short_message":"slow tcp 0"}`+"\x00")
	write(t, ts.dial(t, "udp", "127.0.0.1"), `{"short_message":"fast udp"}`)
	write(t, ts.dial(t, "tcp", "127.0.0.1"), `{"short_message":"fast tcp"}`+"\x00")

	testsupport.Eventually(t, waitFor, func() bool { return len(ts.pub.from("fast ")) == 2 }, "fast peer's records")
	for _, r := range ts.pub.from("fast ") {
		if r.name() != "fast.test" || r.channel != "fast.test" || r.fields["host"] != "fast.test" {
			t.Errorf("fast record %v on channel %q, want fast.test", r.fields, r.channel)
		}
	}
	if got := ts.pub.from("slow "); len(got) != 0 {
		t.Fatalf("slow peer's records published before its name was known: %v", got)
	}
	close(release)
	testsupport.Eventually(t, waitFor, func() bool { return len(ts.pub.from("slow ")) == 6 }, "slow peer's records after the lookup")
	n := 0
	for _, r := range ts.pub.from("slow ") {
		if r.name() != "127-0-0-2.slow.test" || r.channel != "127-0-0-2.slow.test" {
			t.Errorf("slow record %q named %q on %q", r.msg(), r.name(), r.channel)
		}
		if strings.HasPrefix(r.msg(), "slow udp") {
			if want := fmt.Sprintf("slow udp %d", n); r.msg() != want {
				t.Errorf("got %q, want %q", r.msg(), want)
			}
			n++
		}
	}
}

// TestGELFShutdown: Serve returns promptly with a TCP sender connected
// mid-record, and the records already read are published.
func TestGELFShutdown(t *testing.T) {
	ts := startGELFServer(t, GELFConfig{}, nil)
	c := ts.dial(t, "tcp")
	write(t, c, `{"short_message":"before stop"}`+"\x00"+`{"short_mess`)
	ts.pub.wait(t, 1)
	start := time.Now()
	ts.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stop took %v", d)
	}
	if n := ts.value(t, "logviewer_ingest_connections", "gelf-tcp"); n != 0 {
		t.Fatalf("connections gauge %v after stop", n)
	}
}
