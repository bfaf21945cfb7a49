package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// facilityUser is syslog facility 1 (user), what Python's SysLogHandler
// uses by default.
const facilityUser = 1

// framer renders a line as one syslog message in the configured format,
// framed for the transport: over TCP, header-less messages end with NUL
// (as Python's SysLogHandler sends them), RFC 3164 with LF, and RFC 5424
// is octet counted (RFC 6587); over UDP each message is one datagram
// (header-less ones keep Python's trailing NUL).
type framer struct {
	format   string
	tcp      bool
	hostname string
	app      string
	pid      string
	msg      []byte
	out      []byte
}

func newFramer(c Config, pid int) *framer {
	return &framer{format: c.Format, tcp: c.Proto == "tcp", hostname: c.Hostname, app: c.App, pid: strconv.Itoa(pid)}
}

// frame returns the framed message for l at time now; the result is valid
// until the next call.
func (f *framer) frame(l line, now time.Time) []byte {
	m := f.msg[:0]
	m = append(m, '<')
	m = strconv.AppendInt(m, int64(facilityUser*8+int(l.severity)), 10)
	m = append(m, '>')
	switch f.format {
	case formatHeaderless:
		m = append(m, f.app...)
		m = append(m, ": "...)
	case formatRFC3164:
		m = now.AppendFormat(m, time.Stamp)
		m = append(m, ' ')
		m = append(m, f.hostname...)
		m = append(m, ' ')
		m = append(m, f.app...)
		m = append(m, '[')
		m = append(m, f.pid...)
		m = append(m, "]: "...)
	case formatRFC5424:
		m = append(m, "1 "...)
		m = now.AppendFormat(m, "2006-01-02T15:04:05.000000Z07:00")
		m = append(m, ' ')
		m = append(m, f.hostname...)
		m = append(m, ' ')
		m = append(m, f.app...)
		m = append(m, ' ')
		m = append(m, f.pid...)
		m = append(m, ' ')
		m = append(m, l.msgID...)
		m = append(m, " - "...)
	}
	m = append(m, l.text...)
	f.msg = m

	switch {
	case f.format == formatHeaderless:
		f.out = append(append(f.out[:0], m...), 0)
	case !f.tcp:
		f.out = append(f.out[:0], m...)
	case f.format == formatRFC5424:
		f.out = strconv.AppendInt(f.out[:0], int64(len(m)), 10)
		f.out = append(f.out, ' ')
		f.out = append(f.out, m...)
	default:
		f.out = append(append(f.out[:0], m...), '\n')
	}
	return f.out
}

// sender writes frames to the syslog server, reconnecting TCP when the
// connection breaks (the frames in flight then are lost, as with any
// syslog-over-TCP client).
type sender struct {
	proto, addr string
	conn        net.Conn
	w           *bufio.Writer // TCP only
}

// dial connects, retrying for up to wait (TCP servers may start after us).
func dial(ctx context.Context, proto, addr string, wait time.Duration) (*sender, error) {
	s := &sender{proto: proto, addr: addr}
	deadline := time.Now().Add(wait)
	backoff := 50 * time.Millisecond
	for {
		err := s.connect(ctx)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s %s: %w", proto, addr, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *sender) connect(ctx context.Context) error {
	var d net.Dialer
	d.Timeout = 5 * time.Second
	c, err := d.DialContext(ctx, s.proto, s.addr)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", s.proto, s.addr, err)
	}
	s.conn = c
	if s.proto == "tcp" {
		s.w = bufio.NewWriterSize(c, 64<<10)
	}
	return nil
}

// write queues (TCP) or sends (UDP) one frame. UDP errors (an ICMP port
// unreachable from an earlier datagram) are not failures of this one.
func (s *sender) write(frame []byte) error {
	if s.proto == "udp" {
		_, _ = s.conn.Write(frame)
		return nil
	}
	if s.w == nil {
		return fmt.Errorf("write tcp %s: not connected", s.addr)
	}
	if _, err := s.w.Write(frame); err != nil {
		return fmt.Errorf("write tcp %s: %w", s.addr, err)
	}
	return nil
}

// flush pushes queued TCP frames out.
func (s *sender) flush() error {
	if s.w == nil {
		if s.proto == "tcp" {
			return fmt.Errorf("flush tcp %s: not connected", s.addr)
		}
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush tcp %s: %w", s.addr, err)
	}
	return nil
}

// reconnect drops a broken TCP connection and tries once to open a new one.
func (s *sender) reconnect(ctx context.Context) error {
	s.close()
	return s.connect(ctx)
}

func (s *sender) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.w = nil, nil
	}
}
