package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The well-behaved traffic every attack runs beside: one TCP sender from
// its own loopback address (so its own channel, the daemon running with
// --dns=false) and one SSE client of that channel only.
const (
	goodAddr    = "127.0.0.2"
	goodChannel = goodAddr
	goodMark    = "soak-good s="
)

// goodSender sends numbered lines at a steady rate over one TCP connection.
type goodSender struct {
	rate float64
	sent atomic.Int64
	err  error
}

// run sends until ctx ends; each line is an octet-counted frame
// "<14>good: soak-good s=<seq> t=<unix ns>", so it is complete at once.
func (g *goodSender) run(ctx context.Context, syslogAddr string) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(goodAddr)}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", syslogAddr)
	if err != nil {
		g.err = fmt.Errorf("good sender dial: %w", err)
		return
	}
	defer c.Close()
	start := time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds() * g.rate)
		buf = buf[:0]
		for n := g.sent.Load(); n < due; n++ {
			msg := fmt.Sprintf("<14>good: %s%d t=%d", goodMark, n, time.Now().UnixNano())
			buf = strconv.AppendInt(buf, int64(len(msg)), 10)
			buf = append(buf, ' ')
			buf = append(buf, msg...)
		}
		if len(buf) == 0 {
			continue
		}
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(buf); err != nil {
			g.err = fmt.Errorf("good sender write: %w", err)
			return
		}
		g.sent.Store(due)
	}
}

// goodClient reads the good channel over SSE and checks every line.
type goodClient struct {
	mu       sync.Mutex
	seq      seqCheck
	lat      latencies
	dropped  int64 // records the daemon said it dropped for this client
	gaps     int64
	progress atomic.Int64 // distinct lines, for waiting
	err      error

	start               time.Time     // the attack's start
	slow                int64         // lines slower than p99Goal
	firstSlow, lastSlow time.Duration // their send times, since start
}

// setStart notes when the attack started, for the times of slow lines.
func (g *goodClient) setStart(t time.Time) {
	g.mu.Lock()
	g.start = t
	g.mu.Unlock()
}

// run connects to the good channel's SSE stream; connected is closed once
// the stream is open. It reads until ctx ends or the stream fails.
func (g *goodClient) run(ctx context.Context, httpBase string, connected chan<- struct{}) {
	err := g.read(ctx, httpBase, connected)
	if err != nil && ctx.Err() == nil {
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
	}
}

func (g *goodClient) read(ctx context.Context, httpBase string, connected chan<- struct{}) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpBase+"/sse/"+goodChannel, nil)
	if err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("good client: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("good client: status %s", resp.Status)
	}
	close(connected)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // not a good line: those are short
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("good client: stream ended")
			}
			return fmt.Errorf("good client read: %w", err)
		}
		g.handle(line, time.Now())
	}
}

// handle accounts for one SSE line received at now.
func (g *goodClient) handle(line []byte, now time.Time) {
	data, ok := bytes.CutPrefix(line, []byte("data: "))
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n, ok := bytes.CutPrefix(data, []byte(`{"dropped":`)); ok {
		v, _ := strconv.ParseInt(string(bytes.TrimRight(n, "}\r\n")), 10, 64)
		g.dropped += v
		return
	}
	if bytes.HasPrefix(data, []byte(`{"gap":`)) {
		g.gaps++
		return
	}
	seq, sent, ok := parseGood(data)
	if !ok {
		return
	}
	if g.seq.see(seq) {
		lat := now.Sub(time.Unix(0, sent))
		g.lat.add(lat)
		g.progress.Add(1)
		if lat >= p99Goal && !g.start.IsZero() {
			at := time.Unix(0, sent).Sub(g.start)
			if g.slow == 0 {
				g.firstSlow = at
			}
			g.slow++
			g.lastSlow = at
		}
	}
}

// parseGood finds "soak-good s=<seq> t=<ns>" in a record.
func parseGood(data []byte) (seq, sent int64, ok bool) {
	i := bytes.Index(data, []byte(goodMark))
	if i < 0 {
		return 0, 0, false
	}
	rest := data[i+len(goodMark):]
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 || !bytes.HasPrefix(rest[sp:], []byte(" t=")) {
		return 0, 0, false
	}
	seq, err := strconv.ParseInt(string(rest[:sp]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	rest = rest[sp+3:]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	sent, err = strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return seq, sent, true
}

// waitFor waits until the client has n distinct lines, or 5 s pass
// without progress, or 30 s in all.
func (g *goodClient) waitFor(n int64) {
	deadline := time.Now().Add(30 * time.Second)
	last, lastAt := g.progress.Load(), time.Now()
	for time.Now().Before(deadline) {
		got := g.progress.Load()
		if got >= n {
			return
		}
		if got != last {
			last, lastAt = got, time.Now()
		} else if time.Since(lastAt) > 5*time.Second {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goodResult is what the good traffic saw during one attack.
type goodResult struct {
	Sent, Received, Lost, Dups, Reorder int64
	Dropped, Gaps                       int64
	Latency                             latencySummary
	Slow                                int64 // lines slower than p99Goal
	FirstSlow, LastSlow                 time.Duration
	Err                                 string
}

// result summarises the client against sent lines.
func (g *goodClient) result(sent int64, senderErr error) goodResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := goodResult{
		Sent: sent, Received: int64(g.seq.distinct), Lost: g.seq.lost(sent),
		Dups: int64(g.seq.dups), Reorder: int64(g.seq.reorder), Dropped: g.dropped, Gaps: g.gaps,
		Latency: g.lat.summary(), Slow: g.slow, FirstSlow: g.firstSlow, LastSlow: g.lastSlow,
	}
	if err := errors.Join(senderErr, g.err); err != nil {
		r.Err = err.Error()
	}
	return r
}
