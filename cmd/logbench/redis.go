package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/publish"
)

// redisTarget joins a Redis URL and a PSUBSCRIBE pattern into a
// subscriber target.
func redisTarget(url, pattern string) string { return url + " " + pattern }

// runRedis PSUBSCRIBEs on each Redis of the target (several URLs,
// comma-separated: logviewer's shards) and counts the records of all of
// them as one subscriber.
func (s *subscriber) runRedis(ctx context.Context) error {
	urls, pattern, _ := strings.Cut(s.target, " ")
	list := strings.Split(urls, ",")
	var (
		mu        sync.Mutex // s.handle is not safe for concurrent use
		connected int
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(list))
	for _, url := range list {
		go func() {
			errs <- s.readRedis(ctx, url, pattern, func(payload []byte, batch bool) error {
				mu.Lock()
				defer mu.Unlock()
				if payload == nil { // subscribed
					if connected++; connected == len(list) {
						s.markConnected()
					}
					return nil
				}
				defer s.pause(ctx)
				now := time.Now().UnixNano()
				if !batch {
					s.handle(payload, now)
					return nil
				}
				// logviewer's batched layout: one message per flush.
				return publish.EachBatchRecord(string(payload), func(_, gelf string) { s.handle([]byte(gelf), now) })
			})
		}()
	}
	err := <-errs
	cancel()
	for range len(list) - 1 {
		<-errs
	}
	return err
}

// readRedis PSUBSCRIBEs on one Redis and hands each message to got (nil
// once subscribed) with whether it is a batch notification. It reads
// pmessage replies with a minimal RESP2 reader that reuses one buffer: a
// go-redis PubSub allocates a message per line, which at several hundred
// thousand lines/s costs the CPU the measured daemon needs.
func (s *subscriber) readRedis(ctx context.Context, url, pattern string, got func(payload []byte, batch bool) error) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("redis url %s: %w", url, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", opt.Addr)
	if err != nil {
		return fmt.Errorf("redis dial %s: %w", opt.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	r := &respReader{br: bufio.NewReaderSize(conn, 256<<10)}
	if opt.Password != "" {
		args := []string{"AUTH", opt.Password}
		if opt.Username != "" {
			args = []string{"AUTH", opt.Username, opt.Password}
		}
		if err := writeCommand(conn, args...); err != nil {
			return err
		}
		if _, err := r.readReply(); err != nil {
			return fmt.Errorf("redis auth: %w", err)
		}
	}
	if err := writeCommand(conn, "PSUBSCRIBE", pattern); err != nil {
		return err
	}
	for {
		n, err := r.readArrayHeader()
		if err != nil {
			return fmt.Errorf("redis read: %w", err)
		}
		kind, err := r.readBulk()
		if err != nil {
			return fmt.Errorf("redis read: %w", err)
		}
		switch {
		case string(kind) == "psubscribe" && n == 3:
			if _, err := r.readBulk(); err != nil { // pattern
				return fmt.Errorf("redis read: %w", err)
			}
			if _, err := r.readReply(); err != nil { // subscription count
				return fmt.Errorf("redis read: %w", err)
			}
			if err := got(nil, false); err != nil {
				return err
			}
		case string(kind) == "pmessage" && n == 4:
			if _, err := r.readBulk(); err != nil { // pattern
				return fmt.Errorf("redis read: %w", err)
			}
			channel, err := r.readBulk()
			if err != nil {
				return fmt.Errorf("redis read: %w", err)
			}
			batch := strings.HasSuffix(string(channel), publish.BatchChannel)
			payload, err := r.readBulk()
			if err != nil {
				return fmt.Errorf("redis read: %w", err)
			}
			if err := got(payload, batch); err != nil {
				return fmt.Errorf("redis batch: %w", err)
			}
		default:
			for i := 1; i < n; i++ {
				if _, err := r.readReply(); err != nil {
					return fmt.Errorf("redis read: %w", err)
				}
			}
		}
	}
}

// writeCommand sends a RESP array of bulk strings.
func writeCommand(w io.Writer, args ...string) error {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("redis write %s: %w", args[0], err)
	}
	return nil
}

// respReader reads the RESP2 replies a subscribed connection gets. Bulk
// strings are returned in a buffer reused by the next read.
type respReader struct {
	br  *bufio.Reader
	buf []byte
}

// line reads one CRLF-terminated header line without the CRLF.
func (r *respReader) line() ([]byte, error) {
	l, err := r.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("bad RESP line %q", l)
	}
	return l[:len(l)-2], nil
}

// readArrayHeader reads "*N".
func (r *respReader) readArrayHeader() (int, error) {
	l, err := r.line()
	if err != nil {
		return 0, err
	}
	if l[0] != '*' {
		if l[0] == '-' {
			return 0, fmt.Errorf("redis error: %s", l[1:])
		}
		return 0, fmt.Errorf("expected array, got %q", l)
	}
	n, err := strconv.Atoi(string(l[1:]))
	if err != nil {
		return 0, fmt.Errorf("bad array length %q: %w", l, err)
	}
	return n, nil
}

// readBulk reads "$N" and N bytes.
func (r *respReader) readBulk() ([]byte, error) {
	l, err := r.line()
	if err != nil {
		return nil, err
	}
	if l[0] != '$' {
		return nil, fmt.Errorf("expected bulk string, got %q", l)
	}
	return r.bulkBody(l)
}

func (r *respReader) bulkBody(l []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(l[1:]))
	if err != nil || n > 512<<20 {
		return nil, fmt.Errorf("bad bulk length %q", l)
	}
	if n < 0 {
		return nil, nil
	}
	if cap(r.buf) < n+2 {
		r.buf = make([]byte, n+2)
	}
	r.buf = r.buf[:n+2]
	if _, err := io.ReadFull(r.br, r.buf); err != nil {
		return nil, err
	}
	return r.buf[:n], nil
}

// readReply reads and discards one simple reply (status, integer, bulk);
// an error reply is returned as an error.
func (r *respReader) readReply() ([]byte, error) {
	l, err := r.line()
	if err != nil {
		return nil, err
	}
	switch l[0] {
	case '+', ':':
		return l[1:], nil
	case '-':
		return nil, fmt.Errorf("redis error: %s", l[1:])
	case '$':
		return r.bulkBody(l)
	}
	return nil, errors.New("unexpected RESP reply " + strconv.Quote(string(l)))
}
