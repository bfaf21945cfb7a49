package stream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/logviewer/logviewer/internal/peerwatch"
)

// An SSE stream over HTTP/1.x takes its connection over from net/http
// (Hijack): the records then go to the socket in one write per batch, with
// no chunked encoding and none of net/http's per-connection buffers (4 KiB
// to read, 4 KiB and 2 KiB to write) held while the client waits. The
// response ends when the connection closes, as HTTP/1.1 allows for a body
// without a length. HTTP/2 streams stay with net/http.

// takeConn hijacks an HTTP/1.x request's connection for a stream and clears
// the deadlines net/http may have left on it. ok is false (and nothing was
// written) when the connection cannot be taken: HTTP/2, or a ResponseWriter
// that cannot hijack; the caller then streams through w.
func takeConn(w http.ResponseWriter, r *http.Request) (conn net.Conn, ok bool) {
	if r.ProtoMajor != 1 {
		return nil, false
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	// Bytes the client sent after its request (pipelining) are ignored:
	// the stream is the last response on this connection.
	_ = conn.SetDeadline(time.Time{})
	return conn, true
}

// appendResponseHead appends an HTTP/1.1 200 response's status line and
// headers for a body that ends when the connection closes.
func appendResponseHead(b []byte, h http.Header) ([]byte, error) {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	buf := headerBuffer{b: b}
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if err := h.Write(&buf); err != nil {
		return nil, fmt.Errorf("write response header: %w", err)
	}
	return append(buf.b, "\r\n"...), nil
}

// headerBuffer lets http.Header.Write append to a byte slice.
type headerBuffer struct{ b []byte }

func (h *headerBuffer) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

func (h *headerBuffer) WriteString(s string) (int, error) {
	h.b = append(h.b, s...)
	return len(s), nil
}

// watchPeer calls gone when the peer closes conn or sends anything (a
// stream's client has nothing to say); call the returned stop before
// closing conn. One watcher serves every taken connection of the server.
func (s *Server) watchPeer(conn net.Conn, gone context.CancelFunc) (stop func()) {
	w := s.peerWatcher()
	if w == nil {
		go func() {
			var b [16]byte
			_, _ = conn.Read(b[:])
			gone()
		}()
		return func() {}
	}
	return w.Watch(conn, gone)
}

// peerWatcher returns the server's peer watcher, made on first use and
// closed when the server stops; nil when the system has none.
func (s *Server) peerWatcher() *peerwatch.Watcher {
	s.peersOnce.Do(func() {
		w, err := peerwatch.New()
		if err != nil {
			s.log.Warn("peer watcher unavailable; a goroutine per stream reads instead", slog.Any("error", err))
			return
		}
		s.peers = w
		context.AfterFunc(s.stop, func() { _ = w.Close() })
	})
	return s.peers
}

// trackConn registers a taken connection, so that a shutdown past its
// deadline can cut it; the returned func unregisters it.
func (s *Server) trackConn(c net.Conn) (untrack func()) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}
