// Package ratelog limits log lines on hot paths to one a second, counting
// the ones held back so the next line can say how many there were.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets one log line through per second. The zero value is ready;
// it is safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int64
}

// Allow reports whether to log now and how many lines were held back since
// the last one that was.
func (l *Limiter) Allow() (suppressed int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}
