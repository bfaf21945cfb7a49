package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logviewer/logviewer/internal/numfmt"
)

// attackEnv is what an attack is given: the daemon under attack and how
// long to attack.
type attackEnv struct {
	d   *daemon
	dur time.Duration
	log *slog.Logger
}

// attack is one hostile input. run attacks until ctx ends (after dur) and
// returns the attack-specific figures for the report, written once the
// daemon's counters after the attack are known.
type attack struct {
	key, title string
	run        func(ctx context.Context, env attackEnv) (figure func(before, after counters) string, err error)
}

// attacks returns the five attacks, scaled by quick.
func attacks() []attack {
	return []attack{
		{"big-lines", "20 TCP senders of 64 KiB lines (50 lines/s each, 64 MiB/s in all)", bigLines(20, 50, 64<<10)},
		{"stuck-clients", "2,000 SSE clients on `/sse/*` that never read, 1,000 lines/s of 1 KiB flowing", stuckClients(2000, 1000, 1024)},
		{"many-senders", "50,000 UDP senders from distinct 127.x.y.z addresses (10,000 datagrams/s), 16 clients polling `/api/channels`", manySenders(50000, 10000, 16)},
		{"connections", "1,000 TCP connections each holding a 60,000-byte half line, then 1,500 idle ones", connFlood(1500, 1000, 60000)},
		{"udp-stopped", "UDP flood of 40,000 datagrams/s of 200 B, the daemon stopped (SIGSTOP) for 2 s", udpWhileStopped(40000, 200, 2*time.Second)},
	}
}

// loopback returns 127.0.0.0 + n as an IP.
func loopback(n int) net.IP {
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

// pace calls send with how many items are due every 10 ms, at rate a
// second, until ctx ends; send returns false to stop.
func pace(ctx context.Context, rate float64, send func(n int) bool) {
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var done int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds() * rate)
		if due > done {
			if !send(int(due - done)) {
				return
			}
			done = due
		}
	}
}

// octetFrame appends an RFC 6587 octet-counted frame of msg to buf.
func octetFrame(buf, msg []byte) []byte {
	buf = strconv.AppendInt(buf, int64(len(msg)), 10)
	buf = append(buf, ' ')
	return append(buf, msg...)
}

// filler returns a syslog message of exactly size bytes for app.
func filler(app string, size int) []byte {
	msg := []byte("<14>" + app + ": ")
	for len(msg) < size {
		msg = append(msg, "lorem ipsum dolor sit amet "...)
	}
	return msg[:size]
}

// tcpFlood sends size-byte messages as octet-counted frames from source at
// rate lines/s until ctx ends; it returns the lines sent.
func tcpFlood(ctx context.Context, source net.IP, addr, app string, rate float64, size int) (int64, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: source}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("flood dial from %s: %w", source, err)
	}
	defer c.Close()
	frame := octetFrame(nil, filler(app, size))
	var sent int64
	var werr error
	var buf []byte
	pace(ctx, rate, func(n int) bool {
		buf = buf[:0]
		for range n {
			buf = append(buf, frame...)
		}
		if err := writeOn(ctx, c, buf); err != nil {
			if ctx.Err() == nil {
				werr = fmt.Errorf("flood write from %s: %w", source, err)
			}
			return false
		}
		sent += int64(n)
		return true
	})
	return sent, werr
}

// writeOn writes all of p to c, waiting as long as the daemon does not read
// (TCP flow control is the daemon's right), until ctx ends.
func writeOn(ctx context.Context, c net.Conn, p []byte) error {
	for len(p) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.Write(p)
		p = p[n:]
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return nil
}

// bigLines: senders TCP connections, each sending size-byte lines at rate
// a second: history is bounded by bytes, not lines.
func bigLines(senders int, rate float64, size int) func(context.Context, attackEnv) (func(counters, counters) string, error) {
	return func(ctx context.Context, env attackEnv) (func(counters, counters) string, error) {
		var wg sync.WaitGroup
		var sent atomic.Int64
		var firstErr error
		var mu sync.Mutex
		for i := range senders {
			wg.Go(func() {
				n, err := tcpFlood(ctx, loopback(0x0200+i+1), env.d.syslog, "big", rate, size)
				sent.Add(n)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return func(before, after counters) string {
			return fmt.Sprintf("%s big lines sent (%.0f MiB); %s", numfmt.Thousands(sent.Load()), float64(sent.Load())*float64(size)/(1<<20),
				reasons(before, after))
		}, firstErr
	}
}

// stuckClients: n SSE clients on /sse/* that send their request and never
// read (a 4 KiB receive buffer, so they stall at once), while rate lines/s
// of size bytes flow to all of them.
func stuckClients(n int, rate float64, size int) func(context.Context, attackEnv) (func(counters, counters) string, error) {
	return func(ctx context.Context, env attackEnv) (func(counters, counters) string, error) {
		host := env.d.httpBase[len("http://"):]
		req := []byte("GET /sse/* HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n\r\n")
		d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		var failed int
		for i := 0; i < n && ctx.Err() == nil; i++ {
			c, err := d.DialContext(ctx, "tcp", host)
			if err != nil {
				failed++
				continue
			}
			if _, err := c.Write(req); err != nil {
				c.Close()
				failed++
				continue
			}
			conns = append(conns, c)
		}
		env.log.Info("stuck clients connected", slog.Int("clients", len(conns)), slog.Int("failed", failed))
		sent, err := tcpFlood(ctx, loopback(0x0301), env.d.syslog, "flood", rate, size)
		return func(before, after counters) string {
			return fmt.Sprintf("%s stuck clients held (%d failed to connect); %s flood lines sent; %s",
				numfmt.Thousands(int64(len(conns))), failed, numfmt.Thousands(sent), reasons(before, after))
		}, err
	}
}

// manySenders: UDP datagrams, each from a socket bound to one of n
// loopback addresses in turn, at rate a second (a channel per address),
// while pollers clients poll /api/channels back to back (100 ms apart).
func manySenders(n int, rate float64, pollers int) func(context.Context, attackEnv) (func(counters, counters) string, error) {
	return func(ctx context.Context, env attackEnv) (func(counters, counters) string, error) {
		dst, err := net.ResolveUDPAddr("udp", env.d.syslog)
		if err != nil {
			return nil, fmt.Errorf("many senders: %w", err)
		}
		var mu sync.Mutex
		var lat latencies
		var maxListed int
		var pollErrs int
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 10 * time.Second}
		for range pollers {
			wg.Go(func() {
				for ctx.Err() == nil {
					start := time.Now()
					listed, err := pollChannels(ctx, client, env.d.httpBase+"/api/channels")
					took := time.Since(start)
					mu.Lock()
					if err != nil {
						if ctx.Err() == nil {
							pollErrs++
						}
					} else {
						lat.add(took)
						maxListed = max(maxListed, listed)
					}
					mu.Unlock()
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			})
		}
		var sent, sendErrs int64
		next := 0
		pace(ctx, rate, func(k int) bool {
			for range k {
				src := loopback(0x0a0000 + next)
				next = (next + 1) % n
				c, err := net.ListenUDP("udp", &net.UDPAddr{IP: src})
				if err != nil {
					sendErrs++
					continue
				}
				msg := fmt.Sprintf("<14>swarm: datagram %d from %s", sent, src)
				if _, err := c.WriteToUDP([]byte(msg), dst); err != nil {
					sendErrs++
				} else {
					sent++
				}
				c.Close()
			}
			return true
		})
		wg.Wait()
		s := lat.summary()
		return func(before, after counters) string {
			return fmt.Sprintf("%s datagrams sent from %s addresses (%d send errors); `/api/channels` listed at most %s channels, "+
				"%d polls p50 %s p99 %s max %s (%d failed); %s",
				numfmt.Thousands(sent), numfmt.Thousands(int64(min(n, int(sent)))), sendErrs, numfmt.Thousands(int64(maxListed)), s.N, ms(s.P50), ms(s.P99), ms(s.Max), pollErrs,
				reasons(before, after))
		}, nil
	}
}

// pollChannels gets /api/channels and returns how many channels it lists.
func pollChannels(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("channels: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("channels: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("channels: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("channels: status %s", resp.Status)
	}
	return bytes.Count(body, []byte(`"name":`)), nil
}

// connFlood: half connections that each send halfBytes of a line without
// its end (more than --frame-bytes in all), then idle TCP connections that
// never send (past --max-connections in all); every connection the
// daemon closes is opened again a second later, until the attack ends.
func connFlood(idle, half, halfBytes int) func(context.Context, attackEnv) (func(counters, counters) string, error) {
	return func(ctx context.Context, env attackEnv) (func(counters, counters) string, error) {
		partial := filler("half", halfBytes)
		var dials, dialErrs, closedByDaemon atomic.Int64
		hold := func(src net.IP, payload []byte) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
			buf := make([]byte, 512)
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", env.d.syslog)
				dials.Add(1)
				if err != nil {
					dialErrs.Add(1)
				} else {
					stop := context.AfterFunc(ctx, func() { c.Close() })
					if payload == nil || writeAll(c, payload) == nil {
						for {
							if _, err := c.Read(buf); err != nil {
								break
							}
						}
					}
					if stop() {
						closedByDaemon.Add(1)
					}
					c.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
		var peakDaemon atomic.Int64 // syslog connections open, as the daemon counts them
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				if c, err := env.d.scrape(ctx); err == nil {
					peakDaemon.Store(max(peakDaemon.Load(), int64(sumPrefix(c, "logviewer_ingest_connections{"))))
				}
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		})
		for i := range half {
			wg.Go(func() { hold(loopback(0x0500+1+i/100), partial) })
			if i%100 == 99 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		time.Sleep(time.Second)
		for i := range idle {
			wg.Go(func() { hold(loopback(0x0400+1+i/100), nil) })
			if i%100 == 99 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		wg.Wait()
		return func(before, after counters) string {
			return fmt.Sprintf("%s connection attempts (%d failed), %s closed by the daemon; at most %s syslog connections open at once by the daemon's count (`logviewer_ingest_connections`); %s",
				numfmt.Thousands(dials.Load()), dialErrs.Load(), numfmt.Thousands(closedByDaemon.Load()), numfmt.Thousands(peakDaemon.Load()), reasons(before, after))
		}, nil
	}
}

// writeAll writes p with a deadline.
func writeAll(c net.Conn, p []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(p)
	return err
}

// udpWhileStopped: a UDP flood of rate datagrams/s of size bytes; a third
// into it the daemon is stopped with SIGSTOP for stop, then continued.
func udpWhileStopped(rate float64, size int, stop time.Duration) func(context.Context, attackEnv) (func(counters, counters) string, error) {
	return func(ctx context.Context, env attackEnv) (func(counters, counters) string, error) {
		dst, err := net.ResolveUDPAddr("udp", env.d.syslog)
		if err != nil {
			return nil, fmt.Errorf("udp flood: %w", err)
		}
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: loopback(0x0601)}, dst)
		if err != nil {
			return nil, fmt.Errorf("udp flood: %w", err)
		}
		defer c.Close()
		var sigErr error
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			select {
			case <-ctx.Done():
				return
			case <-time.After(env.dur / 3):
			}
			if sigErr = env.d.signal(syscall.SIGSTOP); sigErr != nil {
				return
			}
			time.Sleep(stop)
			sigErr = env.d.signal(syscall.SIGCONT)
		}()
		msg := filler("udpflood", size)
		var sent, sendErrs int64
		pace(ctx, rate, func(k int) bool {
			for range k {
				if _, err := c.Write(msg); err != nil {
					sendErrs++
				} else {
					sent++
				}
			}
			return true
		})
		<-stopped
		return func(before, after counters) string {
			kernel := delta(before, after, `logviewer_dropped_total{reason="udp_kernel"}`)
			got := delta(before, after, `logviewer_ingest_lines_total{transport="udp"}`)
			return fmt.Sprintf("%s datagrams sent (%d send errors), %s received; `udp_kernel` drops: %s before, %s after (+%s); %s",
				numfmt.Thousands(sent), sendErrs, numfmt.Thousands(int64(got)), numfmt.Thousands(int64(before[`logviewer_dropped_total{reason="udp_kernel"}`])),
				numfmt.Thousands(int64(after[`logviewer_dropped_total{reason="udp_kernel"}`])), numfmt.Thousands(int64(kernel)), reasons(before, after))
		}, sigErr
	}
}
