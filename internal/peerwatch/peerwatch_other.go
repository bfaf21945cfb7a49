//go:build !linux

package peerwatch

import (
	"errors"
	"net"
)

// Watcher watches connections for their peer going away: here, with a
// goroutine per connection.
type Watcher struct{}

// New returns a watcher.
func New() (*Watcher, error) { return &Watcher{}, nil }

// Watch calls gone once when conn's peer closes it or sends anything, or
// conn is closed. stop does nothing: closing conn ends the watch.
func (w *Watcher) Watch(conn net.Conn, gone func()) (stop func()) {
	readOnce(conn, gone)
	return func() {}
}

// WatchReadable fails here: without epoll, only a goroutine reading the
// connection can tell when it has something to read.
func (w *Watcher) WatchReadable(conn net.Conn, ready func()) (stop func(), err error) {
	return nil, errors.ErrUnsupported
}

// Close does nothing.
func (w *Watcher) Close() error { return nil }

// Len returns 0: connections are not tracked here.
func (w *Watcher) Len() int { return 0 }
