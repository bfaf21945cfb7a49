package stream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/publish"
)

// handleSSE streams a channel pattern as Server-Sent Events, or as NDJSON
// (one JSON object per line) with ?format=ndjson or Accept: application/x-ndjson.
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(w, r) {
		return
	}
	req, err := parseStreamRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ndjson, err := wantsNDJSON(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		h.Set("Content-Type", "text/event-stream")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through unbuffered
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return // a HEAD (which GET patterns match) gets the headers, not a stream
	}
	// The stream's life: the server's stop ends it, and so does the peer
	// going away (the request's end, or the peer watcher once the
	// connection is taken). The subscription lives as long.
	ctx, cancel := context.WithCancel(s.stop)
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	sub, ok := s.openStream(ctx, w, r, req)
	if !ok {
		return
	}
	client := clientInfo{remote: r.RemoteAddr, gauge: "sse", format: "sse", req: req}
	if ndjson {
		client.format = "ndjson"
	}
	out := &sseSink{ndjson: ndjson, timeout: s.writeTimeout}
	if conn, ok := takeConn(w, r); ok {
		head, err := appendResponseHead(nil, h)
		if err != nil { // cannot happen: the header writes to memory
			conn.Close()
			s.closeStream(sub)
			return
		}
		out.w = &batchWriter{w: conn, buf: head}
		out.conn = rawConn{conn}
		out.start()
		go s.streamOn(ctx, cancel, conn, sub, out, client)
		cancel = nil // streamOn's now
		return
	}
	defer s.closeStream(sub)
	w.WriteHeader(http.StatusOK)
	out.w = &batchWriter{w: w}
	out.conn = http.NewResponseController(w)
	out.start()
	if err := out.flush(); err != nil {
		return
	}
	defer context.AfterFunc(r.Context(), cancel)()
	s.runClient(ctx, client, func(st *pumpStats) error {
		return pump(ctx, s.stop, sub, out, s.pumpConfig(), st)
	})
}

// streamOn runs an SSE stream on a connection taken from net/http, on a
// goroutine of its own: the handler's goroutine (with the stack it grew
// while reading the request) and the request are let go. It owns sub, conn
// and the stream's ctx (cancel ends it) and ends them; the server's stop
// ends ctx too, and the pump tells the two apart. An idle stream parks its
// pump: it holds no goroutine until records, its heartbeat or its end
// come.
func (s *Server) streamOn(ctx context.Context, cancel context.CancelFunc, conn net.Conn, sub publish.Subscription, out *sseSink, client clientInfo) {
	stopWatch := s.watchPeer(conn, cancel)
	untrack := s.trackConn(conn)
	end := s.beginClient(ctx, client)
	var st pumpStats
	finish := func(err error) {
		end(err, &st)
		stopWatch()
		cancel()
		untrack()
		conn.Close()
		s.closeStream(sub)
	}
	if err := out.flush(); err != nil {
		finish(err)
		return
	}
	newPumper(ctx, s.stop, sub, out, s.pumpConfig(), &st).start(finish)
}

// clientInfo names a stream client in logs and metrics.
type clientInfo struct {
	remote string
	gauge  string // "sse" or "ws": which connected-clients gauge counts it
	format string // sse, ndjson or ws
	req    streamRequest
}

// runClient counts, logs and runs one client's stream.
func (s *Server) runClient(ctx context.Context, c clientInfo, run func(*pumpStats) error) {
	end := s.beginClient(ctx, c)
	var st pumpStats
	end(run(&st), &st)
}

// beginClient counts and logs a client that connected. The returned end
// counts and logs its end, with err (why the stream ended) and what it was
// sent; call it once, while ctx (the stream's) has not been cancelled by
// the stream's own end.
func (s *Server) beginClient(ctx context.Context, c clientInfo) (end func(err error, st *pumpStats)) {
	g := s.clientGauge(c.gauge)
	if g != nil {
		g.Inc()
	}
	start := time.Now()
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("client connected", slog.String("remote", c.remote), slog.String("pattern", c.req.pattern),
			slog.String("format", c.format), slog.String("since", c.req.opts.Since), slog.Int("tail", c.req.opts.Tail))
	}
	return func(err error, st *pumpStats) {
		if g != nil {
			defer g.Dec()
		}
		reason := closeReason(ctx, err)
		s.countClosed(reason)
		attrs := []any{slog.String("remote", c.remote), slog.String("pattern", c.req.pattern), slog.String("format", c.format),
			slog.String("reason", reason), slog.Uint64("records", st.records),
			slog.Uint64("dropped", st.dropped), slog.Duration("duration", time.Since(start))}
		if reason == metrics.CloseError {
			attrs = append(attrs, slog.Any("error", err))
		}
		if reason == metrics.CloseSlow {
			// Worth a line at info: it says a reader cannot keep up.
			s.log.Info("client disconnected", attrs...)
			return
		}
		s.log.Debug("client disconnected", attrs...)
	}
}

// closeReason names why a client's stream ended: the metrics label.
func closeReason(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, errSlow) || errors.Is(err, os.ErrDeadlineExceeded):
		return metrics.CloseSlow // a write timeout means the peer stopped reading
	case errors.Is(err, errStopping):
		return metrics.CloseStopping
	case errors.Is(err, publish.ErrClosed):
		return metrics.CloseBusClosed
	case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET):
		// The peer closed while a write was under way: the write saw it
		// before the peer watcher did.
		return metrics.CloseClientGone
	case err != nil && ctx.Err() == nil:
		return metrics.CloseError
	}
	return metrics.CloseClientGone
}

// wantsNDJSON reads the format a streaming request asks for.
func wantsNDJSON(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "ndjson":
		return true, nil
	case "sse":
		return false, nil
	case "":
		return strings.Contains(r.Header.Get("Accept"), "application/x-ndjson"), nil
	default:
		return false, errors.New("bad format " + strconv.Quote(f) + ": want sse or ndjson")
	}
}

// sseSink writes events as text/event-stream or NDJSON into a buffer that
// flush sends as one write.
type sseSink struct {
	w       *batchWriter
	conn    streamConn
	ndjson  bool
	timeout time.Duration // for one flush
	num     []byte        // scratch for numbers
}

// record writes "id: <ID>\ndata: <JSON>\n\n" (no id line for an empty ID),
// or the JSON and a newline in NDJSON.
func (o *sseSink) record(rec *publish.Record) error {
	if rec.SSE != nil {
		// Built once by the bus for every client, its JSON on one line.
		if o.ndjson {
			_, _ = o.w.Write(rec.JSON)
			return o.w.WriteByte('\n')
		}
		_, err := o.w.Write(rec.SSE)
		return err
	}
	if o.ndjson {
		writeOneLine(o.w, rec.JSON)
		return o.w.WriteByte('\n')
	}
	if rec.ID != "" && strings.IndexByte(rec.ID, '\n') < 0 && strings.IndexByte(rec.ID, '\r') < 0 {
		_, _ = o.w.WriteString("id: ")
		_, _ = o.w.WriteString(rec.ID)
		_ = o.w.WriteByte('\n')
	}
	_, _ = o.w.WriteString("data: ")
	writeOneLine(o.w, rec.JSON)
	_, err := o.w.WriteString("\n\n")
	return err
}

// dropped writes the notice that n records were lost.
func (o *sseSink) dropped(n uint64, byChannel map[string]uint64) error {
	if !o.ndjson {
		_, _ = o.w.WriteString("event: dropped\ndata: ")
	}
	o.num = appendDropped(o.num[:0], n, byChannel)
	_, _ = o.w.Write(o.num)
	if o.ndjson {
		_, err := o.w.WriteString("\n")
		return err
	}
	_, err := o.w.WriteString("\n\n")
	return err
}

// gap writes the notice that the resume point was lost.
func (o *sseSink) gap(channels []string) error {
	if !o.ndjson {
		_, _ = o.w.WriteString("event: gap\ndata: ")
	}
	o.num = appendGap(o.num[:0], channels)
	_, _ = o.w.Write(o.num)
	if o.ndjson {
		return o.w.WriteByte('\n')
	}
	_, err := o.w.WriteString("\n\n")
	return err
}

// heartbeat writes an SSE comment, or an empty line in NDJSON (readers
// skip blank lines).
func (o *sseSink) heartbeat() error {
	if o.ndjson {
		return o.w.WriteByte('\n')
	}
	_, err := o.w.WriteString(": ping\n\n")
	return err
}

// flush sends the buffered batch within o.timeout.
// idle gives back the write buffer while the client waits.
func (o *sseSink) idle() { o.w.release() }

func (o *sseSink) flush() error {
	// A deadline the server cannot set (an unusual ResponseWriter) only
	// loses dead-peer detection; the stream still works.
	_ = o.conn.SetWriteDeadline(time.Now().Add(o.timeout))
	if err := o.w.Flush(); err != nil {
		return err
	}
	return o.conn.Flush()
}

// start writes what opens a stream: the reconnection delay, for SSE.
func (o *sseSink) start() {
	if !o.ndjson {
		_, _ = o.w.WriteString("retry: 2000\n\n")
	}
}

// streamConn is where a stream's batches go: net/http's response
// (http.ResponseController) or a taken connection (rawConn).
type streamConn interface {
	SetWriteDeadline(time.Time) error
	Flush() error
}

// rawConn is a taken connection as a streamConn: its writes go straight
// to the socket, so there is nothing to flush.
type rawConn struct{ net.Conn }

// Flush does nothing: a taken connection has no buffer of its own.
func (rawConn) Flush() error { return nil }

// writeOneLine writes a JSON document with any CR or LF (only possible as
// whitespace between tokens in valid JSON) turned into spaces, so the
// document stays one line of the stream.
func writeOneLine(w *batchWriter, doc []byte) {
	for len(doc) > 0 {
		i := bytes.IndexByte(doc, '\n')
		if j := bytes.IndexByte(doc, '\r'); j >= 0 && (i < 0 || j < i) {
			i = j
		}
		if i < 0 {
			_, _ = w.Write(doc)
			return
		}
		_, _ = w.Write(doc[:i])
		_ = w.WriteByte(' ')
		doc = doc[i+1:]
	}
}
