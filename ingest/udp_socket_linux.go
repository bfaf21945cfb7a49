//go:build linux

package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// udpOOBSize is the room for the control messages of one datagram: the
// SO_RXQ_OVFL drop counter, a uint32.
func udpOOBSize() int { return unix.CmsgSpace(4) }

// tuneUDPSocket asks for asked bytes of receive buffer (none when asked is
// 0) and turns on the kernel's drop counter (SO_RXQ_OVFL). It says what the
// kernel granted; a failure leaves the socket usable, with what it has.
func tuneUDPSocket(c *net.UDPConn, asked int) (udpSocketInfo, error) {
	info := udpSocketInfo{asked: asked, how: "kernel default"}
	rc, err := c.SyscallConn()
	if err != nil {
		return info, fmt.Errorf("udp socket options: %w", err)
	}
	var errs []error
	err = rc.Control(func(fd uintptr) {
		s := int(fd)
		if asked > 0 {
			// SO_RCVBUFFORCE (CAP_NET_ADMIN, so root) is not capped at
			// net.core.rmem_max; SO_RCVBUF is.
			if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, asked) == nil {
				info.how = "SO_RCVBUFFORCE"
			} else if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, asked); err == nil {
				info.how = "SO_RCVBUF"
			} else {
				errs = append(errs, fmt.Errorf("set SO_RCVBUF to %d: %w", asked, err))
			}
		}
		if v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
			errs = append(errs, fmt.Errorf("get SO_RCVBUF: %w", err))
		} else if info.how == "kernel default" {
			info.granted = v // net.core.rmem_default, as is
		} else {
			info.granted = v / 2 // Linux doubles the size set, for its bookkeeping, and reports that
		}
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
			errs = append(errs, fmt.Errorf("set SO_RXQ_OVFL: %w", err))
		} else {
			info.dropsCounted = true
		}
	})
	if err != nil {
		return info, fmt.Errorf("udp socket options: %w", err)
	}
	return info, errors.Join(errs...)
}

// kernelDropCount returns the kernel's cumulative count of datagrams the
// socket dropped, from the control messages of one datagram. The kernel
// attaches it only once the count is not zero.
func kernelDropCount(oob []byte) (uint32, bool) {
	for len(oob) > 0 {
		// ParseOneSocketControlMessage does not allocate, unlike
		// ParseSocketControlMessage; this runs per batch when drops happen.
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4 {
			return binary.NativeEndian.Uint32(data), true
		}
		oob = rest
	}
	return 0, false
}
