package stream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// BenchmarkFanout measures the server's cost to deliver one record to one
// client: b.N records go to every client, in chunks that each client
// receives in full before the next is published (so no record is dropped).
// ns/record/client is the figure to read; clients run in the same process
// and their reading is included.
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct {
		kind    string
		clients int
	}{{"sse", 1}, {"sse", 10}, {"ndjson", 10}, {"ws", 10}} {
		b.Run(fmt.Sprintf("%s/clients=%d", bc.kind, bc.clients), func(b *testing.B) {
			benchFanout(b, bc.kind, bc.clients)
		})
	}
}

func benchFanout(b *testing.B, kind string, clients int) {
	const chunk = 1024
	f := startServer(b, Config{})
	counts := make([]*atomic.Int64, clients)
	for i := range counts {
		counts[i] = new(atomic.Int64)
		switch kind {
		case "ws":
			benchWSClient(b, f, counts[i])
		default:
			benchSSEClient(b, f, kind == "ndjson", counts[i])
		}
	}
	testsupport.Eventually(b, wait, func() bool {
		return gauge(b, f.url, `logviewer_stream_clients{kind="sse"}`)+gauge(b, f.url, `logviewer_stream_clients{kind="ws"}`) == float64(clients)
	}, "clients connected")

	gelf := []byte(`{"version":"1.1","host":"bench","short_message":"GET /api/v1/items?page=2 200 1532 bytes in 12 ms",` +
		`"timestamp":1732451234.123,"level":6,"_app_name":"10.1.2.3","_group":"lr","_facility":"user","_app":"web","_procid":"4242"}`)
	ctx := context.Background()
	b.SetBytes(int64(len(gelf)))
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		n := min(chunk, b.N-sent)
		for range n {
			if err := f.hub.Publish(ctx, "app", gelf); err != nil {
				b.Fatal(err)
			}
		}
		sent += n
		deadline := time.Now().Add(wait)
		for _, c := range counts {
			for c.Load() < int64(sent) {
				if time.Now().After(deadline) {
					b.Fatalf("a client has %d of %d records", c.Load(), sent)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/float64(clients), "ns/record/client")
}

// benchSSEClient reads an SSE (or NDJSON) stream of all channels and
// counts its records.
func benchSSEClient(b *testing.B, f *fixture, ndjson bool, count *atomic.Int64) {
	conn, err := net.Dial("tcp", f.host)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	q := ""
	if ndjson {
		q = "?format=ndjson"
	}
	fmt.Fprintf(conn, "GET /sse/*%s HTTP/1.1\r\nHost: %s\r\n\r\n", q, f.host)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 64<<10), nil)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sep := []byte("\n\n")
		if ndjson {
			sep = []byte("\n")
		}
		buf := make([]byte, 64<<10)
		var prev byte
		skip := int64(1) // "retry: 2000\n\n"
		if ndjson {
			skip = 0
		}
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				p := buf[:n]
				c := int64(bytes.Count(p, sep))
				if !ndjson && prev == '\n' && p[0] == '\n' {
					c++
				}
				prev = p[n-1]
				if skip > 0 {
					d := min(skip, c)
					skip -= d
					c -= d
				}
				count.Add(c)
			}
			if err != nil {
				return
			}
		}
	}()
}

// benchWSClient reads a WebSocket stream of all channels and counts its
// frames.
func benchWSClient(b *testing.B, f *fixture, count *atomic.Int64) {
	c := dialWS(b, f, "/ws/*", nil)
	go func() {
		for {
			_, r, err := c.Reader(context.Background())
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			count.Add(1)
		}
	}()
}

// BenchmarkWSDeflate weighs WebSocket permessage-deflate for log records:
// wire-B/record is what one client's TCP connection carried per record,
// ns/record the time to publish, compress, send, receive and inflate it
// (both ends run in this process, on the same cores).
func BenchmarkWSDeflate(b *testing.B) {
	lines := []string{
		"GET /api/v1/items?page=2 200 1532 bytes in 12 ms",
		"POST /api/v1/orders 201 88 bytes in 41 ms user=alice",
		`Traceback (most recent call last):\n  File "/srv/app/jobs.py", line 42, in run\n    total = compute(order)\nZeroDivisionError: division by zero`,
		"worker 7 picked job 81723 from queue default (waited 3 ms)",
		`{"level":"info","msg":"request done","path":"/healthz","status":200,"duration_ms":0.4}`,
		"connection from 10.1.2.3:51234 closed after 2.3 s",
	}
	records := make([][]byte, len(lines))
	for i, l := range lines {
		records[i] = []byte(`{"version":"1.1","host":"logviewer-1","short_message":"` + l +
			`","timestamp":1732451234.123,"level":6,"_app_name":"10.1.2.3","_group":"lr","_facility":"user","_app":"web","_procid":"4242","_hostname":"web-1","_log_time":"2026-11-24T12:27:14.123456Z"}`)
	}
	for _, mode := range []string{"off", "message", "context"} {
		b.Run(mode, func(b *testing.B) {
			const chunk = 512
			f := startServer(b, Config{WSDeflate: mode})
			var wire atomic.Int64
			c := dialWS(b, f, "/ws/app", nil, func(o *websocket.DialOptions) {
				o.CompressionMode = deflateMode(mode)
				o.HTTPClient = &http.Client{Transport: &http.Transport{
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
						if err != nil {
							return nil, err
						}
						return &countingConn{Conn: conn, n: &wire}, nil
					},
				}}
			})
			var got atomic.Int64
			go func() {
				for {
					if _, _, err := c.Read(context.Background()); err != nil {
						return
					}
					got.Add(1)
				}
			}()
			testsupport.Eventually(b, wait, func() bool {
				return gauge(b, f.url, `logviewer_stream_clients{kind="ws"}`) == 1
			}, "client connected")
			ctx := context.Background()
			wire.Store(0)
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; {
				n := min(chunk, b.N-sent)
				for i := range n {
					if err := f.hub.Publish(ctx, "app", records[(sent+i)%len(records)]); err != nil {
						b.Fatal(err)
					}
				}
				sent += n
				deadline := time.Now().Add(wait)
				for got.Load() < int64(sent) {
					if time.Now().After(deadline) {
						b.Fatalf("client has %d of %d records", got.Load(), sent)
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/record")
			b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/record")
		})
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
