package stream

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// rawWS opens a WebSocket to path by hand, so the test decides what the
// client sends and whether it answers pings. It returns the connection
// after the 101 response.
func rawWS(t *testing.T, f *fixture, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, err = c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: " + f.host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
		"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		if strings.HasPrefix(line, "HTTP/") && !strings.HasPrefix(line, "HTTP/1.1 101") {
			t.Fatalf("response %q, want 101", line)
		}
		if line == "\r\n" {
			return c, br
		}
	}
}

// clientFrame is a masked frame as a client sends it (mask key 0: the
// payload is unchanged).
func clientFrame(opcode byte, payload string) []byte {
	return append([]byte{0x80 | opcode, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}

// TestWSNoPongDisconnects: a client that never answers pings is taken for
// dead and disconnected, without a goroutine waiting for its pong.
func TestWSNoPongDisconnects(t *testing.T) {
	f := startServer(t, Config{Heartbeat: 20 * time.Millisecond}, func(s *Server) { s.writeTimeout = 200 * time.Millisecond })
	c, br := rawWS(t, f, "/ws/quiet")
	_ = c.SetReadDeadline(time.Now().Add(wait))
	pings := 0
	for {
		// Read frames (pings) but answer none, until the server closes.
		b0, err := br.ReadByte()
		if err != nil {
			break
		}
		n, err := br.ReadByte()
		if err != nil {
			break
		}
		if b0 == 0x89 {
			pings++
		}
		if _, err := br.Discard(int(n & 0x7f)); err != nil {
			break
		}
	}
	if pings < 2 {
		t.Fatalf("%d pings before the close, want several", pings)
	}
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients_closed_total{reason="error"}`) == 1
	}, "the client that answered no ping was not closed for it")
}

// TestWSClientFrames: pongs (and pings) from an idle client are read and
// answered, and keep it connected; a close frame ends its stream; a data
// message closes the connection with status 1008.
func TestWSClientFrames(t *testing.T) {
	f := startServer(t, Config{Heartbeat: 20 * time.Millisecond}, func(s *Server) { s.writeTimeout = 200 * time.Millisecond })

	// A pong, unasked, and a ping in one write: the server answers the ping.
	c, br := rawWS(t, f, "/ws/quiet")
	_ = c.SetReadDeadline(time.Now().Add(wait))
	if _, err := c.Write(append(clientFrame(0xA, ""), clientFrame(0x9, "hi")...)); err != nil {
		t.Fatal(err)
	}
	// Answer every ping for a while: the client stays.
	sawPong := false
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; {
		b0, err := br.ReadByte()
		if err != nil {
			t.Fatalf("read: %v (a client that answers pings was cut)", err)
		}
		n, _ := br.ReadByte()
		payload := make([]byte, n&0x7f)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		switch b0 {
		case 0x89:
			if _, err := c.Write(clientFrame(0xA, string(payload))); err != nil {
				t.Fatal(err)
			}
		case 0x8A:
			sawPong = sawPong || string(payload) == "hi"
		}
	}
	if !sawPong {
		t.Error("no pong to the client's ping")
	}
	if v := gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`); v != 1 {
		t.Fatalf("%v WebSocket clients, want 1", v)
	}

	// A close frame: the server answers it and the stream ends.
	if _, err := c.Write(clientFrame(0x8, "\x03\xe8")); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, wait, func() bool { return gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 0 },
		"stream open after the client's close frame")

	// A data message: closed with 1008.
	ws := dialWS(t, f, "/ws/quiet", nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, _, err := ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
		t.Fatalf("read after a message: %v, want close status %d", err, websocket.StatusPolicyViolation)
	}
}

// TestWSIdleGoroutines: idle WebSocket clients that answer pings hold no
// goroutine each, and still get records.
func TestWSIdleGoroutines(t *testing.T) {
	const clients = 40
	f := startServer(t, Config{Heartbeat: 20 * time.Millisecond})
	base := runtime.NumGoroutine()
	var pings atomic.Int64
	var conns []*websocket.Conn
	for range clients {
		c := dialWS(t, f, "/ws/quiet", nil, func(o *websocket.DialOptions) {
			o.OnPingReceived = func(context.Context, []byte) bool { pings.Add(1); return true }
		})
		conns = append(conns, c)
	}
	testsupport.Eventually(t, wait, func() bool { return gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == clients },
		"not all clients connected")
	// The clients read (so pings are answered): a goroutine each here, on
	// the client side.
	got := make(chan string, clients)
	for _, c := range conns {
		go func() {
			_, b, err := c.Read(context.Background())
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(b)
		}()
	}
	testsupport.Eventually(t, wait, func() bool { return pings.Load() >= 3*clients },
		"%v pings to %d clients", func() any { return pings.Load() }, clients)
	// Between heartbeats the server holds no goroutine per client (with
	// one, there would be two or three each, with the test's readers).
	testsupport.Eventually(t, wait, func() bool { return runtime.NumGoroutine()-base <= clients+clients/4 },
		"%v goroutines for %d idle clients: want about one each (the test's readers)",
		func() any { return runtime.NumGoroutine() - base }, clients)
	f.publish(t, "quiet", "hello")
	for range clients {
		select {
		case s := <-got:
			if !strings.Contains(s, `"hello"`) {
				t.Fatalf("client got %s", s)
			}
		case <-time.After(wait):
			t.Fatal("a client got no record")
		}
	}
}

func TestWholeFrames(t *testing.T) {
	pong := clientFrame(0xA, "1")
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"empty", nil, 0},
		{"one byte", pong[:1], 0},
		{"header only of a pong", pong[:6], 0},
		{"a pong", pong, len(pong)},
		{"a pong and part of one", append(append([]byte{}, pong...), pong[:3]...), len(pong)},
		{"two pongs", append(append([]byte{}, pong...), pong...), 2 * len(pong)},
		{"a data frame's header", clientFrame(0x1, "hello")[:6], 6},
		{"a pong and a data frame", append(append([]byte{}, pong...), clientFrame(0x1, "hello")...), len(pong) + 6},
		{"a long control frame's header", []byte{0x89, 0x80 | 126, 0, 200, 0, 0, 0, 0}, 8},
	}
	for _, tt := range tests {
		if got := wholeFrames(tt.in); got != tt.want {
			t.Errorf("%s: wholeFrames = %d, want %d", tt.name, got, tt.want)
		}
	}
}
