package ingest

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/logviewer/logviewer/transform"
)

// Peer-name cache tuning.
const (
	dnsWait        = 2 * time.Second  // how long a message waits for its peer's name before using the IP
	dnsLookupLimit = 10 * time.Second // how long one lookup may run in the background
	dnsPositiveTTL = 5 * time.Minute
	dnsNegativeTTL = time.Minute
	dnsMaxEntries  = 4096
	dnsMaxInFlight = 64 // lookups running at once; past it new peers are named by IP
	dnsMaxConfirm  = 4  // reverse names tried by forward lookup, per peer
)

// peerName is what a sending host is called: its name (the GELF _app_name)
// and the channel its records go to.
type peerName struct {
	name    string
	channel string
}

func newPeerName(name string) peerName {
	return peerName{name: name, channel: transform.ChannelName(name)}
}

// ipName names a peer by its address.
func ipName(a netip.Addr) peerName { return newPeerName(a.String()) }

// resolver names peers by forward-confirmed reverse DNS, with a bounded
// cache: a reverse name is taken only when it resolves forward to the peer's
// address again, so whoever controls the reverse zone of an address cannot
// make it pass for another host's channel. Names are kept for
// dnsPositiveTTL, failures (the IP) for dnsNegativeTTL, concurrent requests
// for one address share one lookup, and an expired name is served while it
// is looked up again. With DNS off every peer is named by its IP.
type resolver struct {
	enabled bool
	// lookup is net.Resolver.LookupAddr; tests put a slow one here.
	lookup func(ctx context.Context, addr string) ([]string, error)
	// lookupIP is net.Resolver.LookupNetIP for "ip": the forward lookup
	// that confirms a reverse name; tests put fakes here.
	lookupIP    func(ctx context.Context, host string) ([]netip.Addr, error)
	wait        time.Duration
	lookupLimit time.Duration
	posTTL      time.Duration
	negTTL      time.Duration
	maxEntries  int
	maxInFlight int
	now         func() time.Time
	log         *slog.Logger

	// ctx bounds background lookups; wg counts them.
	ctx context.Context
	wg  sync.WaitGroup

	mu       sync.Mutex
	entries  map[netip.Addr]*dnsEntry
	inFlight int
}

// dnsEntry is one cached peer. Its fields are guarded by resolver.mu.
type dnsEntry struct {
	peer    peerName
	known   bool          // peer is set (possibly expired)
	expires time.Time     // zero: never
	done    chan struct{} // closed when the running lookup ends; nil when none runs
}

func newResolver(enabled bool, log *slog.Logger) *resolver {
	return &resolver{
		enabled:     enabled,
		lookup:      net.DefaultResolver.LookupAddr,
		lookupIP:    lookupNetIP,
		wait:        dnsWait,
		lookupLimit: dnsLookupLimit,
		posTTL:      dnsPositiveTTL,
		negTTL:      dnsNegativeTTL,
		maxEntries:  dnsMaxEntries,
		maxInFlight: dnsMaxInFlight,
		now:         time.Now,
		log:         log,
		ctx:         context.Background(),
		entries:     make(map[netip.Addr]*dnsEntry),
	}
}

// get returns the name of a if it is known now. Otherwise it makes sure a
// lookup runs and returns its entry; the caller waits for entry.done.
func (r *resolver) get(a netip.Addr) (peerName, bool, *dnsEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	e := r.entries[a]
	if e == nil {
		r.evict(now)
		e = &dnsEntry{}
		r.entries[a] = e
	}
	if e.known && (e.expires.IsZero() || now.Before(e.expires)) {
		return e.peer, true, nil
	}
	if !r.enabled {
		e.peer, e.known, e.expires = ipName(a), true, time.Time{}
		return e.peer, true, nil
	}
	if e.done == nil {
		if r.inFlight >= r.maxInFlight {
			if !e.known {
				e.peer, e.known, e.expires = ipName(a), true, now.Add(r.negTTL)
			}
			return e.peer, true, nil
		}
		r.start(a, e)
	}
	if e.known {
		return e.peer, true, nil // stale while it is looked up again
	}
	return peerName{}, false, e
}

// start runs a lookup for e in the background. r.mu is held.
func (r *resolver) start(a netip.Addr, e *dnsEntry) {
	r.inFlight++
	done := make(chan struct{})
	e.done = done
	r.wg.Go(func() {
		ctx, cancel := context.WithTimeout(r.ctx, r.lookupLimit)
		name := r.confirmedName(ctx, a)
		cancel()
		ttl := r.posTTL
		if name == "" {
			name, ttl = a.String(), r.negTTL
		}
		p := newPeerName(name)
		r.mu.Lock()
		e.peer, e.known, e.expires = p, true, r.now().Add(ttl)
		e.done = nil
		r.inFlight--
		r.mu.Unlock()
		close(done)
	})
}

// confirmedName returns the first reverse name of a that resolves forward
// to a, trailing dot removed, or "" when none does.
func (r *resolver) confirmedName(ctx context.Context, a netip.Addr) string {
	names, err := r.lookup(ctx, a.String())
	if err != nil {
		r.log.Debug("reverse lookup failed", slog.String("peer", a.String()), slog.Any("error", err))
		return ""
	}
	tried := 0
	for _, n := range names {
		if n = strings.TrimSuffix(n, "."); n == "" {
			continue
		}
		if tried++; tried > dnsMaxConfirm {
			break
		}
		ips, err := r.lookupIP(ctx, n)
		if err != nil {
			r.log.Debug("forward lookup of a reverse name failed", slog.String("peer", a.String()),
				slog.String("name", n), slog.Any("error", err))
			continue
		}
		for _, ip := range ips {
			if ip.Unmap() == a {
				return n
			}
		}
		r.log.Debug("reverse name does not resolve to the peer; named by its IP",
			slog.String("peer", a.String()), slog.String("name", n))
	}
	return ""
}

// lookupNetIP is the system resolver's forward lookup, IPv4 and IPv6.
func lookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// name returns a's name, waiting up to r.wait for a lookup (or until ctx
// ends); past that the IP stands in while the lookup goes on for later.
func (r *resolver) name(ctx context.Context, a netip.Addr) peerName {
	p, ok, e := r.get(a)
	if ok {
		return p
	}
	return r.await(ctx, a, e, nil)
}

// await waits for e's lookup, r.wait, ctx or hurry, whichever comes first,
// and returns a's name, or its IP when the lookup has not ended.
func (r *resolver) await(ctx context.Context, a netip.Addr, e *dnsEntry, hurry <-chan struct{}) peerName {
	r.mu.Lock()
	done := e.done
	r.mu.Unlock()
	if done != nil {
		t := time.NewTimer(r.wait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		case <-hurry:
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !e.known {
		// Given up on: the IP stands in, already stale, until the lookup
		// ends, so later messages from this peer do not wait again.
		e.peer, e.known, e.expires = ipName(a), true, r.now()
	}
	return e.peer
}

// evict makes room for one more entry: expired idle entries go first, then
// any idle ones. r.mu is held.
func (r *resolver) evict(now time.Time) {
	if len(r.entries) < r.maxEntries {
		return
	}
	for a, e := range r.entries {
		if e.done == nil && !e.expires.IsZero() && now.After(e.expires) {
			delete(r.entries, a)
		}
	}
	// Still full: drop an eighth, idle entries only, in map order (random).
	for a, e := range r.entries {
		if len(r.entries) < r.maxEntries-r.maxEntries/8 {
			break
		}
		if e.done == nil {
			delete(r.entries, a)
		}
	}
}
