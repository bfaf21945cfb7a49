package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Subscriber kinds, by how they receive.
const (
	subSSE   = "sse"
	subWS    = "ws"
	subRedis = "redis"
)

// subscriber is one receiving client. Its read loop owns the tracker and
// histogram; the controller only reads the atomics until the loop ends.
type subscriber struct {
	kind   string
	target string // URL, or Redis URL and pattern
	slow   bool   // stops reading once ready, until resume is closed
	needle []byte

	connected chan struct{} // closed once the stream is open
	ready     atomic.Bool   // a probe arrived: the subscription is live
	got       atomic.Uint64 // distinct load lines received
	lastRecv  atomic.Int64  // unix ns of the latest new load line
	resume    <-chan struct{}

	loadStart atomic.Int64 // unix ns the load started; 0 before

	tracker    seqTracker
	hist       histogram
	secMax     []int64 // worst latency of the lines sent in each second of the load
	dropped    uint64  // sum of dropped notices
	gapNotices uint64
	err        error
	done       chan struct{}
}

// newSubscriber prepares a subscriber of kind for target.
func newSubscriber(kind, target, run string, slow bool, resume <-chan struct{}) *subscriber {
	return &subscriber{
		kind: kind, target: target, slow: slow, needle: markNeedle(run),
		connected: make(chan struct{}), resume: resume, done: make(chan struct{}),
	}
}

// group names the report row the subscriber counts in.
func (s *subscriber) group() string {
	if s.slow {
		return s.kind + "-slow"
	}
	return s.kind
}

// run receives until ctx ends or the stream fails; the error is kept.
func (s *subscriber) run(ctx context.Context, client *http.Client) {
	defer close(s.done)
	var err error
	switch s.kind {
	case subSSE:
		err = s.runSSE(ctx, client)
	case subWS:
		err = s.runWS(ctx, client)
	case subRedis:
		err = s.runRedis(ctx)
	default:
		err = fmt.Errorf("unknown subscriber kind %q", s.kind)
	}
	if err != nil && ctx.Err() == nil {
		s.err = err
	}
}

// markConnected closes connected once.
func (s *subscriber) markConnected() {
	select {
	case <-s.connected:
	default:
		close(s.connected)
	}
}

// handle accounts for one record or notice received at now (unix ns).
func (s *subscriber) handle(data []byte, now int64) {
	if m, ok := findMark(data, s.needle); ok {
		if m.conn == probeConn {
			s.ready.Store(true)
			return
		}
		if s.tracker.see(m.conn, m.seq) {
			s.hist.add(now - m.sent)
			s.noteSecond(m.sent, now-m.sent)
			s.lastRecv.Store(now)
			s.got.Add(1)
		}
		return
	}
	if n, ok := parseNotice(data); ok {
		s.dropped += n.dropped
		if n.gap {
			s.gapNotices++
		}
	}
}

// maxSeconds bounds the per-second latency record (an hour of load).
const maxSeconds = 3600

// noteSecond keeps the worst latency per second of send time, to tell a
// steady latency from a stall.
func (s *subscriber) noteSecond(sent, latency int64) {
	start := s.loadStart.Load()
	if start == 0 || sent < start {
		return
	}
	sec := int((sent - start) / int64(time.Second))
	if sec >= maxSeconds {
		return
	}
	if sec >= len(s.secMax) {
		s.secMax = append(s.secMax, make([]int64, sec+1-len(s.secMax))...)
	}
	s.secMax[sec] = max(s.secMax[sec], latency)
}

// pause blocks a slow subscriber, once it is ready, until resume is
// closed or ctx ends: it stops reading while the load runs.
func (s *subscriber) pause(ctx context.Context) {
	if !s.slow || !s.ready.Load() || s.resume == nil {
		return
	}
	select {
	case <-s.resume:
	case <-ctx.Done():
	}
	s.resume = nil
}

// runSSE reads an SSE (or NDJSON) stream: every "data:" line or JSON line
// is a record or a notice.
func (s *subscriber) runSSE(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.target, nil)
	if err != nil {
		return fmt.Errorf("sse request %s: %w", s.target, err)
	}
	if !strings.Contains(s.target, "format=ndjson") {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sse get %s: %w", s.target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sse get %s: status %s", s.target, resp.Status)
	}
	s.markConnected()
	body := &timedReader{r: resp.Body}
	br := bufio.NewReaderSize(body, 32<<10)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("sse stream ended")
			}
			return fmt.Errorf("sse read: %w", err)
		}
		if long != nil {
			long = append(long, line...)
			line, long = long, nil
		}
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			line = d
		}
		if len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) > 0 && line[0] == '{' {
			// A line arrived with the read that completed it: one clock
			// read per read, not per line (a clock read costs ~100 ns on
			// some VMs, and the receivers share the cores they measure).
			s.handle(line, body.at)
			s.pause(ctx)
		}
	}
}

// timedReader notes when each read of r returned data.
type timedReader struct {
	r  io.Reader
	at int64 // Unix nanoseconds of the last read that returned data
}

func (t *timedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.at = time.Now().UnixNano()
	}
	return n, err
}

// runWS reads WebSocket text frames, one record or notice each.
func (s *subscriber) runWS(ctx context.Context, client *http.Client) error {
	c, _, err := websocket.Dial(ctx, s.target, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return fmt.Errorf("ws dial %s: %w", s.target, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	s.markConnected()
	buf := make([]byte, 0, 8<<10)
	for {
		_, r, err := c.Reader(ctx)
		if err != nil {
			return fmt.Errorf("ws read: %w", err)
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("ws read: %w", err)
			}
		}
		s.handle(buf, time.Now().UnixNano())
		s.pause(ctx)
	}
}

// subscriberResult is what one subscriber saw, for the report.
type subscriberResult struct {
	group      string
	connected  bool
	got        uint64
	loss       lossReport
	dups       uint64
	reorder    uint64
	dropped    uint64
	gapNotices uint64
	lastRecv   int64
	hist       *histogram
	secMax     []int64
	err        error
}

// result summarises the subscriber against what the load sent; call it
// after the read loop has ended.
func (s *subscriber) result(sent []uint64) subscriberResult {
	connected := false
	select {
	case <-s.connected:
		connected = true
	default:
	}
	return subscriberResult{
		group: s.group(), connected: connected, got: s.tracker.distinct,
		loss: s.tracker.loss(sent), dups: s.tracker.dups, reorder: s.tracker.reorder,
		dropped: s.dropped, gapNotices: s.gapNotices, lastRecv: s.lastRecv.Load(),
		hist: &s.hist, secMax: s.secMax, err: s.err,
	}
}
