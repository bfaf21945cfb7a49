package peerwatch

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// Watcher watches connections for their peer going away. Its methods are
// safe for concurrent use.
type Watcher struct {
	epfd, wakefd int
	done         chan struct{} // closed when run has returned

	mu      sync.Mutex
	closed  bool
	next    uint64
	watched map[uint64]func()
}

// New starts a watcher; Close stops it.
func New() (*Watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // token 0: Close
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	w := &Watcher{epfd: epfd, wakefd: wakefd, done: make(chan struct{}), next: 1, watched: map[uint64]func(){}}
	go w.run()
	return w, nil
}

// Watch calls gone once, from another goroutine, when conn's peer closes
// it, resets it or sends anything. Call stop before closing conn; after
// stop, gone is not called (unless it already runs).
func (w *Watcher) Watch(conn net.Conn, gone func()) (stop func()) {
	stop, err := w.WatchReadable(conn, gone)
	if err != nil {
		readOnce(conn, gone)
		return func() {}
	}
	return stop
}

// WatchReadable calls ready once, from another goroutine, when conn has
// something to read: bytes, or the peer's close or reset. It reads nothing:
// the caller reads, then watches again for more. Call stop before closing
// conn, and before watching conn again; after stop, ready is not called
// (unless it already runs). It fails when conn cannot be watched so: no
// file descriptor, or the watcher is closed.
func (w *Watcher) WatchReadable(conn net.Conn, ready func()) (stop func(), err error) {
	rc := rawConn(conn)
	if rc == nil {
		return nil, errNoDescriptor
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, errClosed
	}
	token := w.next
	w.next++
	w.watched[token] = ready
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd:     int32(uint32(token)),
			Pad:    int32(uint32(token >> 32)),
		}
		ctlErr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err = errors.Join(err, ctlErr); err != nil {
		delete(w.watched, token)
		w.mu.Unlock()
		return nil, fmt.Errorf("watch connection: %w", err)
	}
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.watched, token)
		if !w.closed {
			_ = rc.Control(func(fd uintptr) {
				_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
			})
		}
	}, nil
}

// Len returns how many connections are watched.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watched)
}

// run waits for events and calls the watched connections' gone funcs.
func (w *Watcher) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return // cannot happen with a valid epoll descriptor
		}
		for _, ev := range events[:n] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if token == 0 {
				return
			}
			w.mu.Lock()
			gone := w.watched[token]
			delete(w.watched, token)
			w.mu.Unlock()
			if gone != nil {
				gone()
			}
		}
	}
}

// Close stops the watcher; connections still watched are no longer
// reported. It waits for the watching goroutine to end.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.watched = map[uint64]func(){}
	w.mu.Unlock()
	var one = [8]byte{1}
	if _, err := unix.Write(w.wakefd, one[:]); err != nil {
		return fmt.Errorf("wake epoll: %w", err)
	}
	<-w.done
	return errors.Join(unix.Close(w.epfd), unix.Close(w.wakefd))
}
