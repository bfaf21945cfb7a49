package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingLookup answers from a map that the test may change, counting calls.
type countingLookup struct {
	mu      sync.Mutex
	answers map[string][]string
	err     error
	calls   atomic.Int64
}

func (l *countingLookup) set(addr string, names ...string) {
	l.mu.Lock()
	l.answers[addr] = names
	l.mu.Unlock()
}

func (l *countingLookup) lookup(_ context.Context, addr string) ([]string, error) {
	l.calls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return l.answers[addr], nil
}

// testResolver is a resolver with the reverse lookup given and a forward
// lookup that confirms every name as addr1.
func testResolver(lookup func(context.Context, string) ([]string, error), clock *fakeClock) *resolver {
	r := newResolver(true, slog.New(slog.DiscardHandler))
	r.lookup = lookup
	r.lookupIP = func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{addr1}, nil }
	if clock != nil {
		r.now = clock.Now
	}
	return r
}

var addr1 = netip.MustParseAddr("192.0.2.1")

func TestResolverNames(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		err     error
		want    string
	}{
		{"trailing dot removed", []string{"web-1.example.com."}, nil, "web-1.example.com"},
		{"first name wins", []string{"a.example.", "b.example."}, nil, "a.example"},
		{"empty names skipped", []string{".", "c.example."}, nil, "c.example"},
		{"no names: the IP", nil, nil, "192.0.2.1"},
		{"failure: the IP", nil, errors.New("no such host"), "192.0.2.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &countingLookup{answers: map[string][]string{"192.0.2.1": tc.answers}, err: tc.err}
			r := testResolver(l.lookup, nil)
			p := r.name(context.Background(), addr1)
			r.wg.Wait()
			if p.name != tc.want {
				t.Fatalf("name %q, want %q", p.name, tc.want)
			}
		})
	}
}

// TestResolverForwardConfirmed: a reverse name is used only when it
// resolves forward to the peer's address; else the IP names the peer.
func TestResolverForwardConfirmed(t *testing.T) {
	mapped := netip.AddrFrom16(addr1.As16()) // ::ffff:192.0.2.1
	fail := errors.New("no such host")
	tests := []struct {
		name    string
		reverse []string
		forward map[string][]netip.Addr // name -> addresses; a name missing fails
		want    string
	}{
		{"name confirmed", []string{"web-1.example.com."},
			map[string][]netip.Addr{"web-1.example.com": {netip.MustParseAddr("2001:db8::1"), addr1}}, "web-1.example.com"},
		{"confirmed as IPv4-mapped IPv6", []string{"web-1.example."},
			map[string][]netip.Addr{"web-1.example": {mapped}}, "web-1.example"},
		{"name resolving elsewhere: the IP", []string{"bank.example."},
			map[string][]netip.Addr{"bank.example": {netip.MustParseAddr("198.51.100.7")}}, "192.0.2.1"},
		{"name resolving to nothing: the IP", []string{"empty.example."},
			map[string][]netip.Addr{"empty.example": nil}, "192.0.2.1"},
		{"forward lookup failing: the IP", []string{"gone.example."}, nil, "192.0.2.1"},
		{"second name confirmed", []string{"spoof.example.", "real.example."},
			map[string][]netip.Addr{"spoof.example": {netip.MustParseAddr("198.51.100.7")}, "real.example": {addr1}}, "real.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &countingLookup{answers: map[string][]string{"192.0.2.1": tc.reverse}}
			r := testResolver(l.lookup, nil)
			var asked []string
			var mu sync.Mutex
			r.lookupIP = func(_ context.Context, host string) ([]netip.Addr, error) {
				mu.Lock()
				asked = append(asked, host)
				mu.Unlock()
				ips, ok := tc.forward[host]
				if !ok {
					return nil, fail
				}
				return ips, nil
			}
			p := r.name(context.Background(), addr1)
			r.wg.Wait()
			if p.name != tc.want || p.channel != tc.want {
				t.Fatalf("name %q (channel %q), want %q; forward lookups %q", p.name, p.channel, tc.want, asked)
			}
			// The outcome is cached like any other.
			if p := r.name(context.Background(), addr1); p.name != tc.want || l.calls.Load() != 1 {
				t.Fatalf("second request: %q after %d reverse lookups, want %q from the cache", p.name, l.calls.Load(), tc.want)
			}
		})
	}
}

func TestResolverDisabled(t *testing.T) {
	r := newResolver(false, slog.New(slog.DiscardHandler))
	r.lookup = func(context.Context, string) ([]string, error) {
		t.Error("lookup called with DNS off")
		return nil, nil
	}
	for _, a := range []string{"192.0.2.7", "2001:db8::1"} {
		if p := r.name(context.Background(), netip.MustParseAddr(a)); p.name != a {
			t.Errorf("name %q, want %q", p.name, a)
		}
	}
}

// TestResolverCoalesces: concurrent requests for one address share a lookup.
func TestResolverCoalesces(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	r := testResolver(func(ctx context.Context, addr string) ([]string, error) {
		calls.Add(1)
		<-release
		return []string{"shared.example."}, nil
	}, nil)
	r.wait = time.Hour
	const n = 20
	var wg sync.WaitGroup
	names := make([]string, n)
	for i := range n {
		wg.Go(func() { names[i] = r.name(context.Background(), addr1).name })
	}
	testsupport.Eventually(t, waitFor, func() bool { return calls.Load() == 1 }, "one lookup started")
	close(release)
	wg.Wait()
	r.wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d lookups for one address, want 1", c)
	}
	for i, name := range names {
		if name != "shared.example" {
			t.Fatalf("caller %d got %q", i, name)
		}
	}
}

// TestResolverCache: names are kept for the positive TTL, failures for the
// negative one; an expired name is served while it is looked up again.
func TestResolverCache(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	l := &countingLookup{answers: map[string][]string{"192.0.2.1": {"old.example."}}}
	r := testResolver(l.lookup, clock)
	ctx := context.Background()

	steps := []struct {
		name      string
		advance   time.Duration
		change    []string // new DNS answer before the step, if any
		fail      bool
		want      string
		wantCalls int64
	}{
		{name: "first lookup", want: "old.example", wantCalls: 1},
		{name: "cached", advance: 4 * time.Minute, change: []string{"new.example."}, want: "old.example", wantCalls: 1},
		{name: "expired: stale served, refreshed", advance: 2 * time.Minute, want: "old.example", wantCalls: 2},
		{name: "refreshed name", want: "new.example", wantCalls: 2},
		{name: "failure cached as the IP", advance: 6 * time.Minute, fail: true, want: "new.example", wantCalls: 3},
		{name: "negative entry", want: "192.0.2.1", wantCalls: 3},
		{name: "negative kept under a minute", advance: 50 * time.Second, want: "192.0.2.1", wantCalls: 3},
		{name: "negative expires after a minute", advance: 20 * time.Second, want: "192.0.2.1", wantCalls: 4},
	}
	for _, st := range steps {
		clock.Add(st.advance)
		if st.change != nil {
			l.set("192.0.2.1", st.change...)
		}
		l.mu.Lock()
		l.err = nil
		if st.fail {
			l.err = errors.New("server failure")
		}
		l.mu.Unlock()
		got := r.name(ctx, addr1).name
		r.wg.Wait() // let a background refresh finish
		if got != st.want || l.calls.Load() != st.wantCalls {
			t.Fatalf("%s: name %q after %d lookups, want %q after %d", st.name, got, l.calls.Load(), st.want, st.wantCalls)
		}
	}
}

// TestResolverBounded: the cache never holds more than its maximum.
func TestResolverBounded(t *testing.T) {
	l := &countingLookup{answers: map[string][]string{}}
	r := testResolver(l.lookup, nil)
	r.maxEntries = 16
	for i := range 200 {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		r.name(context.Background(), a)
		r.wg.Wait()
		r.mu.Lock()
		n := len(r.entries)
		r.mu.Unlock()
		if n > r.maxEntries {
			t.Fatalf("%d entries after %d peers, want at most %d", n, i+1, r.maxEntries)
		}
	}
}

// TestResolverInFlightLimit: past the limit of running lookups a new peer is
// named by its IP at once.
func TestResolverInFlightLimit(t *testing.T) {
	release := make(chan struct{})
	r := testResolver(func(ctx context.Context, addr string) ([]string, error) {
		<-release
		return []string{"late.example."}, nil
	}, nil)
	r.maxInFlight = 2
	for i := range 2 {
		if _, ok, _ := r.get(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})); ok {
			t.Fatalf("peer %d named before its lookup ended", i)
		}
	}
	p, ok, _ := r.get(netip.MustParseAddr("203.0.113.99"))
	if !ok || p.name != "203.0.113.99" {
		t.Fatalf("third peer: %q %v, want its IP at once", p.name, ok)
	}
	close(release)
	r.wg.Wait()
}

// TestResolverLoopback: the real resolver names 127.0.0.1 from /etc/hosts.
func TestResolverLoopback(t *testing.T) {
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil || !strings.Contains(string(hosts), "localhost") {
		t.Skipf("no localhost in /etc/hosts (%v)", err)
	}
	r := newResolver(true, slog.New(slog.DiscardHandler))
	p := r.name(context.Background(), netip.MustParseAddr("127.0.0.1"))
	r.wg.Wait()
	if p.name != "localhost" || p.channel != "localhost" {
		t.Fatalf("127.0.0.1 named %q (channel %q), want localhost", p.name, p.channel)
	}
}

// TestServerNamesPeersByDNS: with DNS on, the loopback peer's records carry
// the name /etc/hosts gives it.
func TestServerNamesPeersByDNS(t *testing.T) {
	ts := startServer(t, Config{ResolveDNS: true}, nil)
	write(t, ts.dial(t, "udp", "127.0.0.1"), "<14>named udp")
	write(t, ts.dial(t, "tcp", "127.0.0.1"), "<14>named tcp\n")
	for _, r := range ts.pub.wait(t, 2) {
		if r.name() != "localhost" || r.channel != "localhost" {
			t.Errorf("record %q from %q on %q, want localhost", r.msg(), r.name(), r.channel)
		}
	}
}
