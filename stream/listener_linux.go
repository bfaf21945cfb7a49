package stream

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNoSocket is returned by limitUnsent for a connection without a socket.
var errNoSocket = errors.New("not a socket")

// limitUnsent sets TCP_NOTSENT_LOWAT on c's socket.
func limitUnsent(c net.Conn, n int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errNoSocket
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("limit unsent bytes: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	}); err != nil {
		return fmt.Errorf("limit unsent bytes: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("limit unsent bytes: setsockopt TCP_NOTSENT_LOWAT: %w", serr)
	}
	return nil
}
