package peerwatch

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func newWatcher(t *testing.T) *Watcher {
	t.Helper()
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// waitClosed fails the test unless ch is closed within 5 s.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: gone not called within 5 s", what)
	}
}

func TestWatchReportsThePeer(t *testing.T) {
	cases := []struct {
		name string
		peer func(net.Conn) // what the client end does
	}{
		{"close", func(c net.Conn) { c.Close() }},
		{"reset", func(c net.Conn) { c.(*net.TCPConn).SetLinger(0); c.Close() }},
		{"sends", func(c net.Conn) { c.Write([]byte("x")) }},
		{"half close", func(c net.Conn) { c.(*net.TCPConn).CloseWrite() }},
	}
	w := newWatcher(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := pair(t)
			gone := make(chan struct{})
			var calls atomic.Int32
			stop := w.Watch(server, func() {
				if calls.Add(1) == 1 {
					close(gone)
				}
			})
			defer stop()
			tc.peer(client)
			waitClosed(t, gone, tc.name)
			if n := calls.Load(); n != 1 {
				t.Errorf("gone called %d times, want 1", n)
			}
		})
	}
}

// A connection whose peer only reads is not reported, and one stopped
// before its peer closes is not reported either.
func TestWatchQuietAndStopped(t *testing.T) {
	w := newWatcher(t)
	quiet, quietPeer := pair(t)
	var quietGone atomic.Bool
	defer w.Watch(quiet, func() { quietGone.Store(true) })()
	if _, err := quiet.Write([]byte("log line\n")); err != nil { // writing is what streams do
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := quietPeer.Read(buf); err != nil {
		t.Fatal(err)
	}

	stopped, stoppedPeer := pair(t)
	var stoppedGone atomic.Bool
	w.Watch(stopped, func() { stoppedGone.Store(true) })()
	stoppedPeer.Close()

	// A third connection as a marker: once its report came, a report of
	// the others would have come too.
	marker, markerPeer := pair(t)
	gone := make(chan struct{})
	defer w.Watch(marker, func() { close(gone) })()
	markerPeer.Close()
	waitClosed(t, gone, "marker")
	if quietGone.Load() {
		t.Error("a quiet peer was reported gone")
	}
	if stoppedGone.Load() {
		t.Error("a connection was reported after stop")
	}
	if n := w.Len(); n != 1 { // the quiet one
		t.Errorf("Len = %d, want 1", n)
	}
}

func TestWatchTLS(t *testing.T) {
	ca := testsupport.NewCA(t, t.TempDir())
	certFile, keyFile := ca.ServerCert(t, "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			accepted <- c
		}
		close(accepted)
	}()
	client, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("no TLS connection accepted")
	}
	defer server.Close()
	w := newWatcher(t)
	gone := make(chan struct{})
	defer w.Watch(server, func() { close(gone) })()
	client.Close()
	waitClosed(t, gone, "tls")
}

func TestWatchManyOnce(t *testing.T) {
	const n = 200
	w := newWatcher(t)
	var calls atomic.Int32
	all := make(chan struct{})
	for range n {
		server, client := pair(t)
		defer w.Watch(server, func() {
			if calls.Add(1) == n {
				close(all)
			}
		})()
		client.Close()
	}
	waitClosed(t, all, "all")
	if w.Len() != 0 {
		t.Errorf("Len = %d after every peer went, want 0", w.Len())
	}
}

// After Close, watching falls back to a reading goroutine and stop funcs
// still work.
func TestWatchAfterClose(t *testing.T) {
	w := newWatcher(t)
	server, client := pair(t)
	early := w.Watch(server, func() {})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	early()
	server2, client2 := pair(t)
	gone := make(chan struct{})
	defer w.Watch(server2, func() { close(gone) })()
	client2.Close()
	waitClosed(t, gone, "after close")
	client.Close()
}
