package stream

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenerLimitsUnsentBytes: every accepted connection has its unsent
// bytes bounded (the option is not inherited from the listening socket).
func TestListenerLimitsUnsentBytes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ul := unsentLimitListener{l}
	defer ul.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ul.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	}); err != nil || gerr != nil {
		t.Fatalf("getsockopt: %v %v", err, gerr)
	}
	if got != maxUnsent {
		t.Errorf("TCP_NOTSENT_LOWAT = %d, want %d", got, maxUnsent)
	}
	if err := limitUnsent(fakeConn{}, maxUnsent); err == nil {
		t.Error("limitUnsent of a connection without a socket: no error")
	}
}

// fakeConn is a net.Conn without a socket.
type fakeConn struct{ net.Conn }
