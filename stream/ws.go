package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/logviewer/logviewer/publish"
)

// handleWS streams a channel pattern over a WebSocket: one text frame per
// record (its JSON, with _event_id and _channel), {"dropped":N} and
// {"gap":true} notices. Messages from the client are not expected: one
// closes the connection (websocket.Conn.CloseRead).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(w, r) {
		return
	}
	req, err := parseStreamRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sub, ok := s.openStream(w, r, req)
	if !ok {
		return
	}
	defer s.closeStream(sub)

	hw := &corkingWriter{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		// checkOrigin applied the same rules already; the library checks
		// again. "*" is spelled as InsecureSkipVerify, as it asks.
		OriginPatterns:     s.origins.patterns,
		InsecureSkipVerify: s.origins.any,
		CompressionMode:    websocket.CompressionDisabled, // CPU per client outweighs bandwidth here
	})
	if err != nil {
		s.log.Debug("websocket upgrade failed", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		return // Accept answered the request
	}
	defer c.CloseNow()
	cork := hw.conn
	if cork == nil { // cannot happen: Accept succeeded, so it hijacked
		return
	}
	s.mu.Lock()
	s.conns[cork] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, cork)
		s.mu.Unlock()
	}()

	// The read side ends when the peer closes or goes away; it is not tied
	// to s.stop, so a stopping server can still write and close cleanly.
	readCtx := c.CloseRead(r.Context())
	ctx, cancel := context.WithCancel(readCtx)
	defer cancel()
	defer context.AfterFunc(s.stop, cancel)()

	out := &wsSink{c: c, cork: cork, readCtx: readCtx, timeout: s.writeTimeout}
	s.runClient(ctx, r, "ws", "ws", req, func(st *pumpStats) error {
		err := pump(ctx, s.stop, sub, out, s.cfg.Heartbeat, s.cfg.SlowAfter, st)
		if errors.Is(err, errStopping) {
			_ = c.Close(websocket.StatusGoingAway, "server shutting down")
		}
		return err
	})
}

// wsSink writes events as WebSocket text frames. The frames of a batch
// collect in the corked connection and leave in one write at flush.
type wsSink struct {
	c       *websocket.Conn
	cork    *corkConn
	readCtx context.Context
	timeout time.Duration // for one flush or ping
	notice  []byte
}

func (o *wsSink) frame(p []byte) error {
	o.cork.hold()
	// The frame goes to the cork's memory: nothing here can block on the
	// network, so the write needs no deadline of its own.
	return o.c.Write(context.Background(), websocket.MessageText, p)
}

func (o *wsSink) record(rec *publish.Record) error { return o.frame(rec.JSON) }

func (o *wsSink) dropped(n uint64, byChannel map[string]uint64) error {
	o.notice = appendDropped(o.notice[:0], n, byChannel)
	return o.frame(o.notice)
}

func (o *wsSink) gap(channels []string) error {
	o.notice = appendGap(o.notice[:0], channels)
	return o.frame(o.notice)
}

// heartbeat pings the client and waits for its pong (it is only sent
// when the stream has been idle), so a dead peer is found.
func (o *wsSink) heartbeat() error {
	if err := o.cork.release(time.Now().Add(o.timeout)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(o.readCtx, o.timeout)
	defer cancel()
	if err := o.c.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// idle has nothing to give back: frames are written as they come.
func (o *wsSink) idle() {}

func (o *wsSink) flush() error { return o.cork.release(time.Now().Add(o.timeout)) }

// corkingWriter hands websocket.Accept a hijacked connection wrapped in a
// corkConn, so that many frames can be sent in one write.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

// Hijack hijacks the underlying connection and wraps it.
func (h *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if n := brw.Writer.Buffered(); n > 0 {
		// net/http flushes the response header before it hijacks; if a
		// version did not, those bytes must go out first.
		if err := brw.Writer.Flush(); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("flush before hijack: %w", err)
		}
	}
	h.conn = &corkConn{Conn: conn}
	return h.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(h.conn, 8<<10)), nil
}

// Unwrap returns the wrapped ResponseWriter (for http.ResponseController).
func (h *corkingWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// corkConn is a connection whose writes can be held in memory and sent
// together: the WebSocket library flushes after every frame, which would
// be one system call per record. Writes from other goroutines (the
// library's pong and close frames) pass through the same mutex, so frames
// never interleave.
type corkConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  []byte
}

// maxKeptCork is the largest cork buffer kept between batches.
const maxKeptCork = 1 << 20

// hold makes writes collect in memory until release.
func (c *corkConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Write collects p while held, else writes it through.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// release sends what was held, in one write that must end by deadline, and
// lets later writes through.
func (c *corkConn) release(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if len(c.buf) == 0 {
		return nil
	}
	_ = c.Conn.SetWriteDeadline(deadline)
	_, err := c.Conn.Write(c.buf)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if cap(c.buf) > maxKeptCork {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	if err != nil {
		return fmt.Errorf("write websocket batch: %w", err)
	}
	return nil
}
