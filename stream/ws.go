package stream

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/logviewer/logviewer/internal/peerwatch"
	"github.com/logviewer/logviewer/publish"
)

// handleWS streams a channel pattern over a WebSocket: one text frame per
// record (its JSON, with _event_id and _channel), {"dropped":N} and
// {"gap":true} notices. Messages from the client are not expected: one
// closes the connection with status 1008 (see wsReader).
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
	rd := &wsReader{watcher: s.peerWatcher, gone: endStream}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		// checkOrigin applied the same rules already; the library checks
		// again. "*" is spelled as InsecureSkipVerify, as it asks.
		OriginPatterns:     s.origins.patterns,
		InsecureSkipVerify: s.origins.any,
		CompressionMode:    deflateMode(s.cfg.WSDeflate),
		// The library's default for "message" is 512 bytes, past most
		// records: compress what deflate can shrink.
		CompressionThreshold: deflateThreshold,
		OnPongReceived:       rd.pong,
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
	rd.c, rd.cork = c, cork
	client := clientInfo{remote: r.RemoteAddr, gauge: "ws", format: "ws", req: req}
	go s.streamWS(streamCtx, endStream, rd, sub, client)
}

// streamWS runs a WebSocket stream on a goroutine of its own, so the
// handler's goroutine and the request are let go; an idle stream then
// parks its pump and holds no goroutine (see wsReader for the reading
// side). It owns sub, the connection and the stream's ctx (cancel ends
// it) and ends them.
func (s *Server) streamWS(ctx context.Context, cancel context.CancelFunc, rd *wsReader, sub publish.Subscription, client clientInfo) {
	c, cork := rd.c, rd.cork
	untrack := s.trackConn(cork)
	rd.start()
	end := s.beginClient(ctx, client)
	var st pumpStats
	out := &wsSink{c: c, cork: cork, rd: rd, timeout: s.writeTimeout}
	finish := func(err error) {
		rd.stop()
		if errors.Is(err, errStopping) {
			_ = c.Close(websocket.StatusGoingAway, "server shutting down")
		}
		end(err, &st)
		cancel()
		c.CloseNow()
		untrack()
		s.closeStream(sub)
	}
	newPumper(ctx, s.stop, sub, out, s.pumpConfig(), &st).start(finish)
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
	rd      *wsReader
	timeout time.Duration // for one flush or ping
	notice  []byte
	// pingSent is when the oldest ping not answered yet was sent; zero:
	// every ping was answered.
	pingSent time.Time
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

// errNoPong ends a stream whose client answered no ping for longer than
// the write timeout.
var errNoPong = errors.New("websocket client answered no ping")

// pingFrame is a WebSocket ping with no payload, as a server sends it
// (unmasked). Control frames are never compressed.
var pingFrame = []byte{0x89, 0x00}

// heartbeat pings the client (it is only sent when the stream has been
// idle), without waiting for the pong: that would need a goroutine reading
// meanwhile. A client that has answered nothing (no pong, no frame) to a
// ping sent longer than the write timeout ago is taken for dead, at the
// heartbeat after that.
func (o *wsSink) heartbeat() error {
	now := time.Now()
	if !o.pingSent.IsZero() {
		switch {
		case o.rd.heard.Load() >= o.pingSent.UnixNano():
			o.pingSent = time.Time{}
		case now.Sub(o.pingSent) > o.timeout:
			return fmt.Errorf("ping of %v ago: %w", now.Sub(o.pingSent).Round(time.Millisecond), errNoPong)
		}
	}
	if err := o.cork.release(now.Add(o.timeout)); err != nil {
		return err
	}
	// Written beside the library: no frame of its own is under way (the
	// pump writes the data frames; its pongs and close frames are one
	// write each), and the cork's mutex keeps writes whole.
	if err := o.cork.writeNow(pingFrame, now.Add(o.timeout)); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if o.pingSent.IsZero() {
		o.pingSent = now
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
	if n := brw.Reader.Buffered(); n > 0 {
		// Frames the client sent right after its request: read first.
		b, _ := brw.Reader.Peek(n)
		h.conn.in = slices.Clone(b)
	}
	// Small buffers: frames collect in the cork, not in the writer, and a
	// client only sends pongs and a close frame. An idle client then holds
	// a few hundred bytes here instead of net/http's 4 KiB and a writer's.
	br := bufio.NewReaderSize(h.conn, wsReadBuffer)
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
//
// Its reads serve first what wsReader took from the socket (in): while
// draining, they hand out whole frames only, and then errNoFrame, so the
// library stops reading at a frame's boundary.
type corkConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  []byte

	rmu      sync.Mutex
	in       []byte // read from the socket, not yet by the library
	draining bool
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

// writeNow writes p at once (what is held goes first), within deadline.
func (c *corkConn) writeNow(p []byte, deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	_ = c.Conn.SetWriteDeadline(deadline)
	defer c.Conn.SetWriteDeadline(time.Time{})
	if len(c.buf) > 0 {
		c.buf = append(c.buf, p...)
		_, err := c.Conn.Write(c.buf)
		c.buf = c.buf[:0]
		return err
	}
	_, err := c.Conn.Write(p)
	return err
}

// errNoFrame ends the library's read of a draining corkConn: no whole
// frame is left.
var errNoFrame = errors.New("no whole frame read yet")

// Read hands the library what the peer sent: the bytes wsReader took
// first; while draining only whole frames of them, else errNoFrame; else
// straight from the socket.
func (c *corkConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	if c.draining {
		n := wholeFrames(c.in)
		if n == 0 {
			c.rmu.Unlock()
			return 0, errNoFrame
		}
		k := c.takeLocked(p, n)
		c.rmu.Unlock()
		return k, nil
	}
	if len(c.in) > 0 {
		k := c.takeLocked(p, len(c.in))
		c.rmu.Unlock()
		return k, nil
	}
	c.rmu.Unlock()
	return c.Conn.Read(p)
}

// takeLocked moves up to n bytes of in to p.
func (c *corkConn) takeLocked(p []byte, n int) int {
	k := copy(p, c.in[:n])
	c.in = c.in[k:]
	if len(c.in) == 0 {
		c.in = nil
	}
	return k
}

// Limits of what wsReader reads from the socket at once.
const (
	wsReadChunk = 512
	maxInbox    = 16 << 10
	// wsReadWait bounds a read the peer watcher said would not wait (a
	// TLS record may come in pieces).
	wsReadWait = 100 * time.Millisecond
)

// fill reads what the peer sent into in, without waiting past deadline:
// up to maxInbox, until a read does not fill its buffer. It returns how
// many bytes it read.
func (c *corkConn) fill(deadline time.Time) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	_ = c.Conn.SetReadDeadline(deadline)
	defer c.Conn.SetReadDeadline(time.Time{})
	total := 0
	for len(c.in) < maxInbox {
		c.in = slices.Grow(c.in, wsReadChunk)
		room := c.in[len(c.in):cap(c.in)]
		n, err := c.Conn.Read(room)
		c.in = c.in[:len(c.in)+n]
		total += n
		if err != nil || n < len(room) {
			if len(c.in) == 0 {
				c.in = nil
			}
			return total, err
		}
	}
	return total, nil
}

// drain sets whether reads hand out only whole frames. It reports whether
// a whole frame waits.
func (c *corkConn) drain(on bool) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.draining = on
	return wholeFrames(c.in) > 0
}

// hasInput reports whether bytes from the peer wait in in.
func (c *corkConn) hasInput() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return len(c.in) > 0
}

// wholeFrames returns how many bytes at the start of b (sent by a client)
// the library can read without waiting for more: whole control frames
// (pongs, pings, a close), and the header of a data frame or of a bad one,
// from which it can tell that it must close the connection.
func wholeFrames(b []byte) int {
	n := 0
	for {
		hlen, plen, control, ok := frameHeader(b[n:])
		if !ok {
			return n
		}
		if !control || plen > 125 {
			return n + hlen
		}
		if len(b)-n < hlen+int(plen) {
			return n
		}
		n += hlen + int(plen)
	}
}

// frameHeader reads the header of a client's frame at the start of b: its
// length, its payload's and whether it is a control frame. ok is false when
// b does not hold the whole header. A payload length past 1<<62 is
// reported as -1 (the library refuses it).
func frameHeader(b []byte) (hlen int, plen int64, control, ok bool) {
	if len(b) < 2 {
		return 0, 0, false, false
	}
	control = b[0]&0x08 != 0
	hlen = 2
	switch b[1] & 0x7f {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	if b[1]&0x80 != 0 {
		hlen += 4 // the mask key
	}
	if len(b) < hlen {
		return 0, 0, false, false
	}
	switch plen = int64(b[1] & 0x7f); plen {
	case 126:
		plen = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		plen = int64(binary.BigEndian.Uint64(b[2:]))
	}
	if plen < 0 {
		plen = -1
	}
	return hlen, plen, control, true
}

// wsReader reads what a WebSocket client sends (pongs, a close frame;
// data messages are not expected) without a goroutine blocked reading
// each connection: the server's peer watcher tells when the connection
// has something to read, and a short-lived goroutine reads it (fill), has
// the library read the whole frames (answering pings and close frames,
// noting pongs), and watches again. Where the watcher cannot watch, the
// library's own reading goroutine takes over (websocket.Conn.CloseRead).
type wsReader struct {
	watcher func() *peerwatch.Watcher // nil result: no watcher
	gone    context.CancelFunc        // ends the stream
	c       *websocket.Conn
	cork    *corkConn
	// heard is when the client was last heard (Unix nanoseconds): a pong,
	// or any bytes.
	heard atomic.Int64

	mu        sync.Mutex // held while reading, and to stop
	stopped   bool
	stopWatch func() // nil: not watched
	readable  func() // what the watcher calls: starts read; made once
}

// pong notes that the client answered a ping (the library calls it).
func (r *wsReader) pong(context.Context, []byte) { r.heard.Store(time.Now().UnixNano()) }

// start begins reading what the client sends.
func (r *wsReader) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cork.hasInput() {
		go r.read() // frames sent right after the request
		return
	}
	r.watchLocked()
}

// stop ends the reading: once it returns, nothing reads the connection
// (but the library's goroutine, if it took over) and the connection can be
// closed.
func (r *wsReader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.stopWatch != nil {
		r.stopWatch()
		r.stopWatch = nil
	}
}

// watchLocked has the watcher call read when the connection has something
// to read, or starts the library's reading goroutine where it cannot.
func (r *wsReader) watchLocked() {
	if w := r.watcher(); w != nil {
		if r.readable == nil {
			r.readable = func() { go r.read() }
		}
		stop, err := w.WatchReadable(r.cork.Conn, r.readable)
		if err == nil {
			r.stopWatch = stop
			return
		}
	}
	// The library reads from now on; its context ends when the connection
	// does.
	context.AfterFunc(r.c.CloseRead(context.Background()), r.gone)
}

// read reads what the client sent and watches for more, or ends the stream
// when the client closed, went away or sent a message.
func (r *wsReader) read() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	if r.stopWatch != nil {
		r.stopWatch() // it fired: watching again takes a new watch
		r.stopWatch = nil
	}
	n, readErr := r.cork.fill(time.Now().Add(wsReadWait))
	if n > 0 {
		r.heard.Store(time.Now().UnixNano())
	}
	var err error
	message := false
	if r.cork.drain(true) {
		_, _, err = r.c.Reader(context.Background())
		message = err == nil
	}
	r.cork.drain(false)
	if readErr != nil && errors.Is(readErr, os.ErrDeadlineExceeded) {
		readErr = nil // a TLS record in pieces: the rest comes later
	}
	switch {
	case message:
		r.stopped = true
		r.mu.Unlock()
		// As CloseRead does; Close reads the rest of the handshake itself.
		_ = r.c.Close(websocket.StatusPolicyViolation, "unexpected data message")
		r.gone()
		return
	case err != nil && !errors.Is(err, errNoFrame), readErr != nil:
		// A close frame (the library answered it), a protocol error, or the
		// peer gone.
		r.stopped = true
		r.mu.Unlock()
		r.gone()
		return
	}
	r.watchLocked()
	r.mu.Unlock()
}
