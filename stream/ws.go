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
	// The stream's life, which outlasts this handler: the subscription
	// lives as long, and streamWS ends it.
	streamCtx, endStream := context.WithCancel(s.stop)
	sub, ok := s.openStream(streamCtx, w, r, req)
	if !ok {
		endStream()
		return
	}
	hw := &corkingWriter{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		// checkOrigin applied the same rules already; the library checks
		// again. "*" is spelled as InsecureSkipVerify, as it asks.
		OriginPatterns:     s.origins.patterns,
		InsecureSkipVerify: s.origins.any,
		CompressionMode:    deflateMode(s.cfg.WSDeflate),
		// The library's default for "message" is 512 bytes, past most
		// records: compress what deflate can shrink.
		CompressionThreshold: deflateThreshold,
	})
	if err != nil {
		s.log.Debug("websocket upgrade failed", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		s.closeStream(sub)
		endStream()
		return // Accept answered the request
	}
	cork := hw.conn
	if cork == nil { // cannot happen: Accept succeeded, so it hijacked
		c.CloseNow()
		s.closeStream(sub)
		endStream()
		return
	}
	client := clientInfo{remote: r.RemoteAddr, gauge: "ws", format: "ws", req: req}
	go func() {
		defer endStream()
		s.streamWS(c, cork, sub, client)
	}()
}

// streamWS runs a WebSocket stream on a goroutine of its own, so the
// handler's goroutine and the request are let go. It owns sub and c and
// ends them.
func (s *Server) streamWS(c *websocket.Conn, cork *corkConn, sub publish.Subscription, client clientInfo) {
	defer s.closeStream(sub)
	defer c.CloseNow()
	defer s.trackConn(cork)()

	// The read side ends when the peer closes or goes away; it is not tied
	// to s.stop, so a stopping server can still write and close cleanly.
	readCtx := c.CloseRead(context.Background())
	ctx, cancel := context.WithCancel(readCtx)
	defer cancel()
	defer context.AfterFunc(s.stop, cancel)()

	out := &wsSink{c: c, cork: cork, readCtx: readCtx, timeout: s.writeTimeout}
	s.runClient(ctx, client, func(st *pumpStats) error {
		err := pump(ctx, s.stop, sub, out, s.pumpConfig(), st)
		if errors.Is(err, errStopping) {
			_ = c.Close(websocket.StatusGoingAway, "server shutting down")
		}
		return err
	})
}

// deflateThreshold is the smallest message compressed when a client
// negotiated permessage-deflate.
const deflateThreshold = 128

// deflateMode maps Config.WSDeflate to the library's mode; anything but
// "message" and "context" is off (NewServer checked it).
func deflateMode(s string) websocket.CompressionMode {
	switch s {
	case "message":
		return websocket.CompressionNoContextTakeover
	case "context":
		return websocket.CompressionContextTakeover
	}
	return websocket.CompressionDisabled
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

// idle gives back a cork buffer grown by a batch.
func (o *wsSink) idle() { o.cork.shrink() }

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
	// Small buffers: frames collect in the cork, not in the writer, and a
	// client only sends pongs and a close frame. An idle client then holds
	// a few hundred bytes here instead of net/http's 4 KiB and a writer's.
	br := brw.Reader
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(h.conn, wsReadBuffer)
	}
	return h.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(h.conn, wsWriteBuffer)), nil
}

// Buffer sizes of a WebSocket connection's reader and writer.
const (
	wsReadBuffer  = 256
	wsWriteBuffer = 256
)

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

// shrink gives back a buffer grown past idleBuffer while nothing is held.
func (c *corkConn) shrink() {
	c.mu.Lock()
	if !c.held && cap(c.buf) > idleBuffer {
		c.buf = nil
	}
	c.mu.Unlock()
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
