package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/logviewer/logviewer/internal/testsupport"
)

func TestUDP(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		datagrams []string
		want      []string // suffixes of short_message, in order
		truncated int
	}{
		{
			name:      "python style datagrams",
			datagrams: []string{"<12>warning:udp one\x00", "<14>udp two\n", "<14>udp three\r\n"},
			want:      []string{"udp one", "udp two", "udp three"},
		},
		{
			name:      "a datagram is one message, newlines and all",
			datagrams: []string{"<14>two\nlines\x00"},
			want:      []string{"two\nlines"},
		},
		{
			name:      "empty datagrams are skipped",
			datagrams: []string{"\x00", "\r\n", "<14>not empty"},
			want:      []string{"not empty"},
		},
		{
			name:      "oversize datagram is cut",
			max:       1000,
			datagrams: []string{"<14>" + strings.Repeat("z", 5000), "<14>small"},
			want:      []string{"zzzzzzzzzz", "small"},
			truncated: 1,
		},
		{
			name:      "largest datagram",
			datagrams: []string{"<14>" + strings.Repeat("w", 65000)},
			want:      []string{strings.Repeat("w", 65000)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{MaxMessageSize: tc.max}, nil)
			c := ts.dial(t, "udp", "")
			write(t, c, tc.datagrams...)
			recs := ts.pub.wait(t, len(tc.want))
			if len(recs) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(recs), len(tc.want))
			}
			for i, r := range recs {
				if !strings.HasSuffix(r.msg(), tc.want[i]) {
					t.Errorf("record %d: short_message %.40q..., want it to end in %.40q", i, r.msg(), tc.want[i])
				}
				if tc.max > 0 && len(r.msg()) > tc.max {
					t.Errorf("record %d: %d bytes, beyond the maximum %d", i, len(r.msg()), tc.max)
				}
				if r.name() != "127.0.0.1" || r.channel != "127.0.0.1" {
					t.Errorf("record %d: _app_name %q channel %q, want the peer IP", i, r.name(), r.channel)
				}
			}
			if tc.truncated > 0 && len(recs[0].msg()) < tc.max-10 {
				t.Errorf("truncated record holds %d bytes, want about %d", len(recs[0].msg()), tc.max)
			}
			if got := ts.value(t, "logviewer_ingest_truncated_total", ""); got != float64(tc.truncated) {
				t.Errorf("truncated counter %v, want %d", got, tc.truncated)
			}
			if got := ts.value(t, "logviewer_ingest_lines_total", "udp"); got != float64(len(tc.want)) {
				t.Errorf("udp lines counter %v, want %d", got, len(tc.want))
			}
			sent := 0
			for _, d := range tc.datagrams {
				sent += len(d)
			}
			testsupport.Eventually(t, waitFor, func() bool {
				return ts.value(t, "logviewer_ingest_bytes_total", "udp") == float64(sent)
			}, "udp bytes counter %v, want %d", func() any { return ts.value(t, "logviewer_ingest_bytes_total", "udp") }, sent)
		})
	}
}

// TestSlowResolverDoesNotDelayOthers: while one peer's name lookup hangs,
// another peer's TCP lines and UDP datagrams go through; once the lookup
// answers, the held peer's messages arrive in order under its name.
func TestSlowResolverDoesNotDelayOthers(t *testing.T) {
	requireLoopbackAlias(t)
	release := make(chan struct{})
	ts := startServer(t, Config{ResolveDNS: true}, func(s *Server) {
		s.names.wait = time.Hour // held until released, however slow the machine
		fakeDNS(s.names, release, map[string]string{"127.0.0.1": "fast.test"})
	})

	slowTCP := ts.dial(t, "tcp", "127.0.0.2")
	slowUDP := ts.dial(t, "udp", "127.0.0.2")
	write(t, slowTCP, "<14>slow tcp 0\n", "<14>slow tcp 1\n")
	for i := 0; i < 5; i++ {
		write(t, slowUDP, fmt.Sprintf("<14>slow udp %d", i))
	}
	fastTCP := ts.dial(t, "tcp", "127.0.0.1")
	fastUDP := ts.dial(t, "udp", "127.0.0.1")
	write(t, fastUDP, "<14>fast udp 0")
	write(t, fastTCP, "<14>fast tcp 0\n")

	testsupport.Eventually(t, waitFor, func() bool { return len(ts.pub.from("fast ")) == 2 }, "fast peer's records")
	for _, r := range ts.pub.from("fast ") {
		if r.name() != "fast.test" || r.channel != "fast.test" {
			t.Errorf("fast record %q named %q on channel %q, want fast.test", r.msg(), r.name(), r.channel)
		}
	}
	if got := ts.pub.from("slow "); len(got) != 0 {
		t.Fatalf("slow peer's records published before its name was known: %v", got)
	}

	close(release)
	testsupport.Eventually(t, waitFor, func() bool { return len(ts.pub.from("slow ")) == 7 }, "slow peer's records after the lookup")
	next := map[string]int{}
	for _, r := range ts.pub.from("slow ") {
		if r.name() != "127-0-0-2.slow.test" {
			t.Errorf("slow record %q named %q, want 127-0-0-2.slow.test", r.msg(), r.name())
		}
		var transport string
		var n int
		msg := r.msg()
		if _, err := fmt.Sscanf(msg[strings.Index(msg, "slow "):], "slow %s %d", &transport, &n); err != nil {
			t.Fatalf("record %q: %v", msg, err)
		}
		if n != next[transport] {
			t.Errorf("slow %s record %d arrived when %d was due", transport, n, next[transport])
		}
		next[transport]++
	}
}

// TestSlowResolverTimeout: when the name does not come within the wait, the
// IP stands in and nothing is lost.
func TestSlowResolverTimeout(t *testing.T) {
	requireLoopbackAlias(t)
	never := make(chan struct{})
	defer close(never)
	ts := startServer(t, Config{ResolveDNS: true}, func(s *Server) {
		s.names.wait = 20 * time.Millisecond
		fakeDNS(s.names, never, nil)
	})
	write(t, ts.dial(t, "udp", "127.0.0.2"), "<14>udp after timeout")
	write(t, ts.dial(t, "tcp", "127.0.0.2"), "<14>tcp after timeout\n")
	for _, r := range ts.pub.wait(t, 2) {
		if r.name() != "127.0.0.2" || r.channel != "127.0.0.2" {
			t.Errorf("record %q named %q on %q, want the IP", r.msg(), r.name(), r.channel)
		}
	}
}

// TestUDPQueueFull: a peer that sends more than its queue holds while its
// name is looked up gets the IP at once, in order, with nothing dropped.
func TestUDPQueueFull(t *testing.T) {
	requireLoopbackAlias(t)
	never := make(chan struct{})
	defer close(never)
	ts := startServer(t, Config{ResolveDNS: true}, func(s *Server) {
		s.names.wait = time.Hour
		fakeDNS(s.names, never, nil)
	})
	const n = lookupQueueLen + 50
	c := ts.dial(t, "udp", "127.0.0.2")
	sent := 0
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("<14>flood %d", i)
		write(t, c, msg)
		sent += len(msg)
		if i%64 == 63 {
			// Paced so that the loopback socket buffer never overflows.
			testsupport.Eventually(t, waitFor, func() bool {
				return ts.value(t, "logviewer_ingest_bytes_total", "udp") == float64(sent)
			}, "first %d datagrams read", i+1)
		}
	}
	recs := ts.pub.wait(t, n)
	for i, r := range recs {
		if want := fmt.Sprintf("flood %d", i); !strings.HasSuffix(r.msg(), want) || r.name() != "127.0.0.2" {
			t.Fatalf("record %d: %q from %q, want %q from 127.0.0.2", i, r.msg(), r.name(), want)
		}
	}
}

// TestUDPReadErrorNotFatal: failing reads are counted and the reader goes on.
func TestUDPReadErrorNotFatal(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	// A deadline in the past makes every read of the real socket fail.
	if err := ts.udp.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, waitFor, func() bool {
		return ts.value(t, "logviewer_dropped_total", "udp_read_error") >= 2
	}, "udp read errors counted")
	if err := ts.udp.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	write(t, ts.dial(t, "udp", ""), "<14>after the errors")
	if r := ts.pub.wait(t, 1)[0]; !strings.HasSuffix(r.msg(), "after the errors") {
		t.Fatalf("got %q", r.msg())
	}
}

// TestUDPAddressFamilies: the batch reader fits the socket's family, and a
// wildcard (dual-stack) socket names IPv4 peers by their plain IPv4 address.
func TestUDPAddressFamilies(t *testing.T) {
	ipv6OK := true
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		ipv6OK = false
	} else {
		c.Close()
	}
	tests := []struct {
		name   string
		addr   string // server's listen address
		from   string // client's address, also what the record must be named
		ipv6   bool   // the server's socket is IPv6, read with the ipv6 package
		needV6 bool
	}{
		{name: "ipv4 socket", addr: "127.0.0.1:0", from: "127.0.0.1"},
		{name: "wildcard socket, ipv4 peer", addr: ":0", from: "127.0.0.1", ipv6: ipv6OK},
		{name: "wildcard socket, ipv6 peer", addr: ":0", from: "::1", ipv6: true, needV6: true},
		{name: "ipv6 socket", addr: "[::1]:0", from: "::1", ipv6: true, needV6: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needV6 && !ipv6OK {
				t.Skip("no IPv6 loopback here")
			}
			ts := startServer(t, Config{Addr: tc.addr}, nil)
			switch r := newUDPBatchReader(ts.udp).(type) {
			case *ipv6.PacketConn:
				if !tc.ipv6 {
					t.Errorf("socket %v read with the ipv6 package, want ipv4", ts.UDPAddr())
				}
			case *ipv4.PacketConn:
				if tc.ipv6 {
					t.Errorf("socket %v read with the ipv4 package, want ipv6", ts.UDPAddr())
				}
			default:
				t.Fatalf("reader %T", r)
			}
			port := ts.UDPAddr().(*net.UDPAddr).Port
			c, err := net.Dial("udp", net.JoinHostPort(tc.from, strconv.Itoa(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			write(t, c, "<14>from "+tc.from)
			r := ts.pub.wait(t, 1)[0]
			if !strings.HasSuffix(r.msg(), "from "+tc.from) || r.name() != tc.from {
				t.Fatalf("record %q named %q, want it named %q", r.msg(), r.name(), tc.from)
			}
		})
	}
}

func TestDropCounter(t *testing.T) {
	tests := []struct {
		name  string
		last  uint32
		seen  uint32
		delta uint32
	}{
		{name: "first sighting counts all since the socket opened", last: 0, seen: 7, delta: 7},
		{name: "growth", last: 7, seen: 10, delta: 3},
		{name: "no change", last: 10, seen: 10, delta: 0},
		{name: "wrap-around", last: 0xffff_fffe, seen: 3, delta: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dropCounter{last: tc.last}
			if got := c.advance(tc.seen); got != tc.delta {
				t.Errorf("advance(%d) after %d = %d, want %d", tc.seen, tc.last, got, tc.delta)
			}
			if c.last != tc.seen {
				t.Errorf("last = %d, want %d", c.last, tc.seen)
			}
		})
	}
}

// TestUDPReceiveBuffer: what was asked for is what the kernel granted, or
// net.core.rmem_max when SO_RCVBUF had to do without SO_RCVBUFFORCE.
func TestUDPReceiveBuffer(t *testing.T) {
	for _, asked := range []int{0, 256 << 10, 3 << 20} {
		t.Run(fmt.Sprint(asked), func(t *testing.T) {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			info, err := tuneUDPSocket(c.(*net.UDPConn), asked)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", info)
			if !info.dropsCounted {
				t.Errorf("kernel drops not counted")
			}
			switch info.how {
			case "kernel default":
				if asked != 0 || info.granted <= 0 {
					t.Errorf("asked %d: %+v", asked, info)
				}
			case "SO_RCVBUFFORCE":
				if info.granted != asked {
					t.Errorf("granted %d with SO_RCVBUFFORCE, want %d", info.granted, asked)
				}
			case "SO_RCVBUF":
				if info.granted <= 0 || info.granted > asked {
					t.Errorf("granted %d with SO_RCVBUF, want up to %d", info.granted, asked)
				}
			default:
				t.Errorf("how %q", info.how)
			}
		})
	}
}

// gatePublisher holds every Publish until open is called.
type gatePublisher struct {
	next    Publisher
	entered chan struct{} // gets a value when a Publish waits
	release chan struct{}
	once    sync.Once
}

// newGate returns a closed gate. Register t.Cleanup(g.open) after the
// server starts: cleanups run last first, and the server's stop waits for
// a reader held at the gate.
func newGate() *gatePublisher {
	return &gatePublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

// open lets every Publish through, now and later.
func (g *gatePublisher) open() { g.once.Do(func() { close(g.release) }) }

// waitEntered fails the test unless a Publish is held within waitFor.
func (g *gatePublisher) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(waitFor):
		t.Fatal("the reader never published")
	}
}

func (g *gatePublisher) Publish(ctx context.Context, channel string, gelf []byte) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return g.next.Publish(ctx, channel, gelf)
}

// TestUDPKernelDrops: while the reader is stalled, a flood overflows a small
// socket buffer; the kernel's drops are counted, and with what was received
// they add up to what was sent (loopback loses nothing else).
func TestUDPKernelDrops(t *testing.T) {
	g := newGate()
	logs := &testsupport.LockedBuffer{}
	ts := startServer(t, Config{UDPBuffer: 32 << 10, Logger: slog.New(slog.NewTextHandler(logs, nil))},
		func(s *Server) { g.next, s.pub = s.pub, g })
	t.Cleanup(g.open) // before the server's stop, which waits for the reader
	c := ts.dial(t, "udp", "")
	write(t, c, "<14>stall")
	g.waitEntered(t)
	const flood = 3000
	for i := range flood {
		write(t, c, fmt.Sprintf("<14>flood %d", i))
	}
	sent := 1 + flood
	g.open()

	// The count rides on datagrams received after the drops: send probes
	// until one is through.
	for probes := 0; len(ts.pub.from("probe")) == 0; probes++ {
		if probes == 100 {
			t.Fatal("no probe got through")
		}
		write(t, c, "<14>probe")
		sent++
		deadline := time.Now().Add(100 * time.Millisecond)
		for len(ts.pub.from("probe")) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	counts := func() (received, dropped float64) {
		return ts.value(t, "logviewer_ingest_lines_total", "udp"), ts.value(t, "logviewer_dropped_total", "udp_kernel")
	}
	testsupport.Eventually(t, waitFor, func() bool {
		received, dropped := counts()
		return received+dropped == float64(sent)
	}, "received + dropped = sent %d; received, dropped: %v", sent, func() any { r, d := counts(); return []float64{r, d} })
	received, dropped := counts()
	t.Logf("sent %d, received %v, dropped by the kernel %v", sent, received, dropped)
	if dropped == 0 {
		t.Fatal("no kernel drops counted")
	}
	if !strings.Contains(logs.String(), "the kernel dropped UDP datagrams") {
		t.Errorf("the drops were not logged:\n%s", logs.String())
	}
}

// TestUDPOrderAcrossBatches: datagrams that queue up in the socket while
// the publisher is held are read many to a batch and handed from the reader
// to the handling goroutine; each peer's arrive complete and in order.
func TestUDPOrderAcrossBatches(t *testing.T) {
	requireLoopbackAlias(t)
	g := newGate()
	ts := startServer(t, Config{UDPBuffer: 4 << 20}, func(s *Server) { g.next, s.pub = s.pub, g })
	t.Cleanup(g.open) // before the server's stop, which waits for the reader
	peers := []net.Conn{ts.dial(t, "udp", "127.0.0.1"), ts.dial(t, "udp", "127.0.0.2")}
	write(t, peers[0], "<14>peer 0 hold")
	g.waitEntered(t)
	// 301 datagrams fit the socket buffer even where net.core.rmem_max
	// caps it at its usual 208 KiB (about 830 bytes of it per datagram).
	const each = 150
	for i := range each {
		for p, c := range peers {
			write(t, c, fmt.Sprintf("<14>peer %d seq %d", p, i))
		}
	}
	g.open()
	recs := ts.pub.wait(t, 1+2*each)
	next := [2]int{}
	for _, r := range recs[1:] {
		var p, n int
		msg := r.msg()
		if _, err := fmt.Sscanf(msg[strings.Index(msg, "peer "):], "peer %d seq %d", &p, &n); err != nil {
			t.Fatalf("record %q: %v", msg, err)
		}
		if want := fmt.Sprintf("127.0.0.%d", p+1); r.name() != want {
			t.Errorf("record %q named %q, want %q", msg, r.name(), want)
		}
		if n != next[p] {
			t.Fatalf("peer %d: record %d arrived when %d was due", p, n, next[p])
		}
		next[p]++
	}
	if got := ts.value(t, "logviewer_dropped_total", "udp_kernel"); got != 0 {
		t.Errorf("%v datagrams dropped by the kernel, want none", got)
	}
}
