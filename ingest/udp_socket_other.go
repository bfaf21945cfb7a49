//go:build !linux

package ingest

import (
	"fmt"
	"net"
)

// udpOOBSize is 0: the kernel drop counter is Linux's.
func udpOOBSize() int { return 0 }

// tuneUDPSocket asks for asked bytes of receive buffer (none when 0). What
// was granted is not known here, nor are kernel drops counted.
func tuneUDPSocket(c *net.UDPConn, asked int) (udpSocketInfo, error) {
	info := udpSocketInfo{asked: asked, how: "kernel default"}
	if asked > 0 {
		if err := c.SetReadBuffer(asked); err != nil {
			return info, fmt.Errorf("set udp receive buffer to %d: %w", asked, err)
		}
		info.how = "SetReadBuffer"
	}
	return info, nil
}

// kernelDropCount finds nothing: no drop counter off Linux.
func kernelDropCount([]byte) (uint32, bool) { return 0, false }
