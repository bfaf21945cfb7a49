// Package peerwatch tells when the peer of a connection that the program
// only writes to (a log stream) closes it or sends anything, without a
// goroutine per connection where the system allows: on Linux one goroutine
// waits on an epoll set for every watched connection. Elsewhere, or for a
// connection without a file descriptor, a goroutine per connection reads.
package peerwatch

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// Why WatchReadable cannot watch a connection.
var (
	errNoDescriptor = errors.New("peerwatch: connection without a file descriptor")
	errClosed       = errors.New("peerwatch: watcher closed")
)

// readOnce is the fallback: a goroutine that reads until the peer closes
// or sends something, or the connection is closed.
func readOnce(conn net.Conn, gone func()) {
	go func() {
		var b [16]byte
		_, _ = conn.Read(b[:])
		gone()
	}()
}

// rawConn returns the file descriptor access of conn (under TLS, of the
// connection beneath it), or nil.
func rawConn(conn net.Conn) syscall.RawConn {
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	if u, ok := conn.(interface{ Unwrap() net.Conn }); ok {
		conn = u.Unwrap()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
