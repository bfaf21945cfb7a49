package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// loadConfig says what the load generator sends.
type loadConfig struct {
	Addr     string        // syslog host:port
	Proto    string        // tcp or udp
	Conns    int           // parallel connections, one goroutine each
	Count    uint64        // lines in all; with Rate and no Count: Rate*Duration
	Rate     float64       // lines per second in all; 0: as fast as possible
	Duration time.Duration // with Rate, when Count is 0
	Kind     string        // headerless, rfc3164, rfc5424, mix
	Size     int           // approximate bytes per line
	Run      string        // run ID carried by every line
	// AppPerConn names the app of connection n "logbench-n" instead of
	// "logbench": with the daemon's --channel-from app, one channel per
	// connection (to spread the load over Redis shards).
	AppPerConn bool
}

// batchBytes is how much a connection buffers before one write: large
// writes keep the sender's system-call cost per line low.
const batchBytes = 128 << 10

// rateTick is how often a rate-limited connection wakes to send the lines
// that have fallen due: rate limiting by batches, not by per-line timers.
const rateTick = time.Millisecond

// loadResult is what the load generator did.
type loadResult struct {
	Sent   []uint64 // lines written per connection (connection c+1 sent sequences 0..Sent[c]-1)
	Start  time.Time
	End    time.Time // when the last connection finished
	Errors []string
}

// total is the number of lines sent on all connections.
func (r *loadResult) total() uint64 {
	var n uint64
	for _, s := range r.Sent {
		n += s
	}
	return n
}

// total returns how many lines the configuration sends in all.
func (c loadConfig) total() uint64 {
	if c.Count > 0 || c.Rate <= 0 {
		return c.Count
	}
	return uint64(c.Rate * c.Duration.Seconds())
}

// dialLoad opens the load connections before the run, so connecting is not
// part of the measured time.
func dialLoad(ctx context.Context, cfg loadConfig) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, cfg.Conns)
	var d net.Dialer
	for i := 0; i < cfg.Conns; i++ {
		c, err := d.DialContext(ctx, cfg.Proto, cfg.Addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("dial %s %s: %w", cfg.Proto, cfg.Addr, err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4 << 20)
		}
		if uc, ok := c.(*net.UDPConn); ok {
			_ = uc.SetWriteBuffer(4 << 20)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// runLoad sends the configured lines over conns (from dialLoad), one
// goroutine per connection, from start on, and closes them when done.
func runLoad(ctx context.Context, cfg loadConfig, conns []net.Conn, start time.Time) *loadResult {
	res := &loadResult{Sent: make([]uint64, len(conns)), Start: start}
	total := cfg.total()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, c := range conns {
		n := total / uint64(len(conns))
		if uint64(i) < total%uint64(len(conns)) {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, err := sendLines(ctx, cfg, c, i+1, n, cfg.Rate/float64(len(conns)), res.Start)
			res.Sent[i] = sent
			if cerr := c.Close(); err == nil && cerr != nil && cfg.Proto == "tcp" {
				err = fmt.Errorf("close: %w", cerr)
			}
			if err != nil {
				mu.Lock()
				res.Errors = append(res.Errors, fmt.Sprintf("connection %d: %v", i+1, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.End = time.Now()
	return res
}

// sendLines writes n lines of connection conn over c, at rate lines/s when
// rate > 0, and returns how many were written.
func sendLines(ctx context.Context, cfg loadConfig, c net.Conn, conn int, n uint64, rate float64, start time.Time) (uint64, error) {
	udp := cfg.Proto == "udp"
	builders := []*lineBuilder{}
	if cfg.Kind == kindMix {
		for _, k := range kinds {
			builders = append(builders, newLineBuilder(k, udp, cfg.Run, conn, cfg.Size, start))
		}
	} else {
		builders = append(builders, newLineBuilder(cfg.Kind, udp, cfg.Run, conn, cfg.Size, start))
	}
	if cfg.AppPerConn {
		for _, b := range builders {
			b.appPerConn(conn)
		}
	}
	buf := make([]byte, 0, batchBytes+64<<10)
	var sent uint64
	for sent < n {
		if ctx.Err() != nil {
			return sent, nil
		}
		due := n
		if rate > 0 {
			due = min(n, uint64(time.Since(start).Seconds()*rate)+1)
			if due <= sent {
				// Sleep until the next line falls due, but at least a tick.
				next := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
				time.Sleep(max(time.Until(next), rateTick))
				continue
			}
		}
		stamp := time.Now().UnixNano()
		buf = buf[:0]
		first := sent
		for seq := first; seq < due && len(buf) < batchBytes; seq++ {
			b := builders[seq%uint64(len(builders))]
			start := len(buf)
			buf = b.appendLine(buf, seq, stamp)
			if udp {
				if _, err := c.Write(buf[start:]); err != nil && !isRefused(err) {
					return sent, fmt.Errorf("write udp: %w", err)
				}
				buf = buf[:0]
			}
			sent++
		}
		if !udp {
			if _, err := c.Write(buf); err != nil {
				// What the kernel took of a failed write is unknown: count none of the batch.
				return first, fmt.Errorf("write tcp: %w", err)
			}
		}
	}
	return sent, nil
}

// isRefused reports a UDP write that failed because an earlier datagram
// met a closed port: the line is still counted as offered.
func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write" && errors.Is(err, syscall.ECONNREFUSED)
}

// prober sends readiness probes: lines of connection 0 that subscribers
// use to know they receive, before the measured load starts.
type prober struct {
	conn net.Conn
	b    *lineBuilder
	seq  uint64
	buf  []byte
}

// newProber connects a probe sender to the load address.
func newProber(ctx context.Context, cfg loadConfig) (*prober, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, cfg.Proto, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial probe %s %s: %w", cfg.Proto, cfg.Addr, err)
	}
	kind := cfg.Kind
	if kind == kindMix {
		kind = kindRFC3164
	}
	return &prober{conn: c, b: newLineBuilder(kind, cfg.Proto == "udp", cfg.Run, probeConn, 0, time.Now())}, nil
}

// send writes one probe line.
func (p *prober) send() error {
	p.buf = p.b.appendLine(p.buf[:0], p.seq, time.Now().UnixNano())
	p.seq++
	if _, err := p.conn.Write(p.buf); err != nil && !isRefused(err) {
		return fmt.Errorf("write probe: %w", err)
	}
	return nil
}

// Close closes the probe connection.
func (p *prober) Close() error { return p.conn.Close() }
