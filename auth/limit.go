package auth

import (
	"net/netip"
	"sync"
	"time"
)

// FailureLimit bounds failed logins per client address: after Max failures
// within Window, the address is refused until the window that began with its
// first failure ends. The table of addresses is bounded too: when full, the
// entries whose window has ended are dropped, then the whole table (an
// attacker with that many addresses gains one more try each).
type FailureLimit struct {
	Max     int
	Window  time.Duration
	MaxAddr int

	mu    sync.Mutex
	addrs map[netip.Addr]*failures
}

type failures struct {
	count int
	since time.Time
}

// NewFailureLimit returns a limit of max failures per window per address.
func NewFailureLimit(max int, window time.Duration) *FailureLimit {
	return &FailureLimit{Max: max, Window: window, MaxAddr: 65536, addrs: map[netip.Addr]*failures{}}
}

// Allowed reports whether addr may try to log in now, and when not, how long
// until it may.
func (l *FailureLimit) Allowed(addr netip.Addr, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.addrs[addr]
	if f == nil {
		return true, 0
	}
	if end := f.since.Add(l.Window); !now.Before(end) {
		delete(l.addrs, addr)
		return true, 0
	} else if f.count >= l.Max {
		return false, end.Sub(now)
	}
	return true, 0
}

// Fail counts a failed login from addr.
func (l *FailureLimit) Fail(addr netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.addrs[addr]
	if f == nil || !now.Before(f.since.Add(l.Window)) {
		if len(l.addrs) >= l.MaxAddr {
			l.prune(now)
		}
		f = &failures{since: now}
		l.addrs[addr] = f
	}
	f.count++
}

// prune drops the ended windows, or everything when none has ended.
func (l *FailureLimit) prune(now time.Time) {
	for a, f := range l.addrs {
		if !now.Before(f.since.Add(l.Window)) {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) >= l.MaxAddr {
		clear(l.addrs)
	}
}
