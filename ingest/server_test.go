package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
	"github.com/logviewer/logviewer/transform"
)

const waitFor = 10 * time.Second

// record is one published record as the collector saw it.
type record struct {
	channel string
	fields  map[string]any
}

func (r record) msg() string  { s, _ := r.fields["short_message"].(string); return s }
func (r record) name() string { s, _ := r.fields["_app_name"].(string); return s }

// collector is a Publisher that keeps every record.
// It takes batches, as the buses do, and remembers their sizes.
type collector struct {
	mu      sync.Mutex
	recs    []record
	bad     []string
	batches []int // the number of records of each PublishBatch
}

func (c *collector) Publish(_ context.Context, channel string, gelf []byte) error {
	var f map[string]any
	err := json.Unmarshal(gelf, &f)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad = append(c.bad, string(gelf))
		return nil
	}
	c.recs = append(c.recs, record{channel: channel, fields: f})
	return nil
}

func (c *collector) PublishBatch(ctx context.Context, records iter.Seq2[string, []byte]) error {
	n := 0
	for channel, gelf := range records {
		if err := c.Publish(ctx, channel, gelf); err != nil {
			return err
		}
		n++
	}
	c.mu.Lock()
	c.batches = append(c.batches, n)
	c.mu.Unlock()
	return nil
}

// batchSizes returns the sizes of the batches published so far.
func (c *collector) batchSizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

// onlyPublish hides a Publisher's other methods: the server publishes
// record by record.
type onlyPublish struct{ Publisher }

func (c *collector) all() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 {
		panic(fmt.Sprintf("publisher got invalid JSON: %q", c.bad))
	}
	return append([]record(nil), c.recs...)
}

// wait waits until n records are published and returns them.
func (c *collector) wait(t testing.TB, n int) []record {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		recs := c.all()
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d records published, want %d", waitFor, len(recs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// from returns the records whose short_message has the prefix.
func (c *collector) from(prefix string) []record {
	var out []record
	for _, r := range c.all() {
		if strings.Contains(r.msg(), prefix) {
			out = append(out, r)
		}
	}
	return out
}

// testServer is a running Server with its publisher and metrics.
type testServer struct {
	*Server
	pub  *collector
	reg  *prometheus.Registry
	stop func() // cancels Serve and waits for it to return
}

// startServer listens on a free loopback port and serves until the test ends.
// configure, if given, runs before Serve (to put in a test resolver).
func startServer(t *testing.T, cfg Config, configure func(*Server)) *testServer {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	pub := &collector{}
	reg := prometheus.NewRegistry()
	met := metrics.New(reg)
	s := NewServer(cfg, &transform.Encoder{Hostname: "test", Group: "lr"}, pub, met)
	if configure != nil {
		configure(s)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	stop := serveInBackground(t, s.Serve)
	return &testServer{Server: s, pub: pub, reg: reg, stop: stop}
}

// serveInBackground runs serve until the returned stop is called or the
// test ends, and fails the test when serve errs or outlives its context.
func serveInBackground(t *testing.T, serve func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve returned %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("Serve did not return %v after its context ended", waitFor)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// value reads a counter or gauge of the server's metrics by name and first
// label value ("" for a metric without labels); a missing sample reads 0.
func (ts *testServer) value(t testing.TB, name, label string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); label != "" && (len(l) == 0 || l[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// dial connects to the server over network from the local IP from ("" for any).
func (ts *testServer) dial(t *testing.T, network, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: waitFor}
	addr := ts.TCPAddr().String()
	if network == "udp" {
		addr = ts.UDPAddr().String()
	}
	if from != "" {
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(from)}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
		}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s from %q: %v", network, addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

func TestListenSamePortBothTransports(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	tcp, udp := ts.TCPAddr().(*net.TCPAddr), ts.UDPAddr().(*net.UDPAddr)
	if tcp.Port == 0 || tcp.Port != udp.Port {
		t.Fatalf("tcp %v and udp %v should share one port", tcp, udp)
	}
}

func TestListenErrors(t *testing.T) {
	tests := []struct {
		name    string
		occupy  string // network to occupy the port with
		wantErr string
	}{
		{"tcp port taken", "tcp", "listen tcp 127.0.0.1:"},
		{"udp port taken", "udp", "listen udp 127.0.0.1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := testsupport.FreePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			var occupier io.Closer
			var err error
			if tc.occupy == "tcp" {
				occupier, err = net.Listen("tcp", addr)
			} else {
				occupier, err = net.ListenPacket("udp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer occupier.Close()

			s := NewServer(Config{Addr: addr}, &transform.Encoder{}, &collector{}, nil)
			err = s.Listen()
			if err == nil {
				t.Fatalf("Listen succeeded on a taken port")
			}
			want := tc.wantErr + fmt.Sprint(port) + ": address already in use"
			if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("error %q, want %q wrapping EADDRINUSE", err, want)
			}
			if tc.occupy == "udp" {
				// The TCP side was released again.
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("tcp port still held after the failed Listen: %v", err)
				}
				l.Close()
			}
		})
	}
	t.Run("bad address", func(t *testing.T) {
		err := NewServer(Config{Addr: "no-port"}, &transform.Encoder{}, &collector{}, nil).Listen()
		if err == nil || !strings.Contains(err.Error(), "no-port") {
			t.Fatalf("error %v, want one naming the address", err)
		}
	})
}

// TestShutdown: Serve returns once its context ends, with idle and busy
// connections and a UDP datagram waiting for its peer's name; frames
// already read are still published.
func TestShutdown(t *testing.T) {
	requireLoopbackAlias(t)
	release := make(chan struct{})
	defer close(release)
	ts := startServer(t, Config{ResolveDNS: true}, func(s *Server) {
		s.names.wait = time.Hour
		fakeDNS(s.names, release, map[string]string{"127.0.0.1": "fast.test"})
	})

	idle := ts.dial(t, "tcp", "127.0.0.1")
	_ = idle
	busy := ts.dial(t, "tcp", "127.0.0.1")
	write(t, busy, "<14>shut one\n<14>shut two\n<14>shut partial")
	ts.pub.wait(t, 2)
	testsupport.Eventually(t, waitFor, func() bool {
		return ts.value(t, "logviewer_ingest_connections", "tcp") == 2
	}, "2 tcp connections open")

	// From a peer whose lookup never ends until shutdown cancels it.
	slow := ts.dial(t, "udp", "127.0.0.2")
	write(t, slow, "<14>shut udp")
	testsupport.Eventually(t, waitFor, func() bool {
		return ts.value(t, "logviewer_ingest_lines_total", "udp") == 0 &&
			ts.value(t, "logviewer_ingest_bytes_total", "udp") > 0
	}, "udp datagram read and queued")

	ts.stop()

	recs := ts.pub.all()
	if len(recs) != 4 {
		t.Fatalf("published %d records, want 4: %v", len(recs), recs)
	}
	if !strings.HasSuffix(ts.pub.from("shut partial")[0].msg(), "shut partial") {
		t.Errorf("the unterminated tail was not published whole: %v", recs)
	}
	if got := ts.pub.from("shut udp"); len(got) != 1 || got[0].name() != "127.0.0.2" {
		t.Errorf("queued udp datagram: %v, want one record named by its IP", got)
	}
	if g := ts.value(t, "logviewer_ingest_connections", "tcp"); g != 0 {
		t.Errorf("tcp connections gauge %v after shutdown, want 0", g)
	}
	// The listeners are closed.
	if c, err := net.DialTimeout("tcp", ts.TCPAddr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("still accepting after shutdown")
	}
}

// requireLoopbackAlias checks that 127.0.0.2 can be used as a source address
// (Linux routes all of 127/8 to the loopback interface).
func requireLoopbackAlias(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("127.0.0.2 is not usable as a loopback address: %v", err)
	}
	c.Close()
}

// fakeDNS puts testLookup(release, names) in r as its reverse lookup, and a
// forward lookup that confirms the names it gives.
func fakeDNS(r *resolver, release <-chan struct{}, names map[string]string) {
	r.lookup = testLookup(release, names)
	r.lookupIP = func(_ context.Context, host string) ([]netip.Addr, error) {
		for addr, n := range names {
			if n == host {
				return []netip.Addr{netip.MustParseAddr(addr)}, nil
			}
		}
		if dashed, ok := strings.CutSuffix(host, ".slow.test"); ok {
			if a, err := netip.ParseAddr(strings.ReplaceAll(dashed, "-", ".")); err == nil {
				return []netip.Addr{a}, nil
			}
		}
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
}

// testLookup returns a resolver function: addresses in names resolve at once
// (with a trailing dot, as DNS answers), any other blocks until release is
// closed (then answers "<addr>.slow.test.") or ctx ends.
func testLookup(release <-chan struct{}, names map[string]string) func(context.Context, string) ([]string, error) {
	return func(ctx context.Context, addr string) ([]string, error) {
		if n, ok := names[addr]; ok {
			return []string{n + "."}, nil
		}
		select {
		case <-release:
			return []string{strings.ReplaceAll(addr, ".", "-") + ".slow.test."}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TestServeListens: Serve binds by itself when Listen was not called, and
// returns the bind error when it cannot.
func TestServeListens(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := NewServer(Config{Addr: taken.Addr().String()}, &transform.Encoder{}, &collector{}, nil)
	if err := s.Serve(context.Background()); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Serve on a taken port: %v, want EADDRINUSE", err)
	}

	pub := &collector{}
	s = NewServer(Config{Addr: "127.0.0.1:0"}, &transform.Encoder{}, pub, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	testsupport.Eventually(t, waitFor, func() bool { return s.UDPAddr() != nil }, "Serve bound its sockets")
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, "<14>served")
	pub.wait(t, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}
