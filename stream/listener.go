package stream

import "net"

// maxUnsent bounds the bytes a stream connection's socket holds that were
// not sent yet (TCP_NOTSENT_LOWAT, Linux): past it a write waits, as it
// does when the client's queue is full. Without it the kernel grows a
// socket's send buffer up to 4 MiB (net.ipv4.tcp_wmem) even for a client
// that reads nothing, and copying records into the sockets of thousands
// of such clients takes the cores the clients that read are waiting for.
// The bytes in flight are not bounded by it, so a distant fast client
// keeps its throughput.
const maxUnsent = 32 << 10

// unsentLimitListener sets maxUnsent on every connection it accepts.
type unsentLimitListener struct{ net.Listener }

// Accept waits for the next connection and bounds its unsent bytes.
func (l unsentLimitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// A failure is not fatal: the stream works, the kernel buffers more.
	_ = limitUnsent(c, maxUnsent)
	return c, nil
}
