package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/transform"
)

// countingPublisher counts records and keeps nothing.
type countingPublisher struct{ n atomic.Int64 }

func (p *countingPublisher) Publish(context.Context, string, []byte) error {
	p.n.Add(1)
	return nil
}

// benchServer serves on a loopback port until the benchmark ends.
func benchServer(b *testing.B) (*Server, *countingPublisher) {
	b.Helper()
	pub := &countingPublisher{}
	s := NewServer(Config{Addr: "127.0.0.1:0"}, &transform.Encoder{Hostname: "bench", Group: "lr"}, pub,
		metrics.New(prometheus.NewRegistry()))
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return s, pub
}

// BenchmarkServerTCP measures TCP ingest of RFC 3164 lines, end to end from
// the client's socket to a publisher that discards: framing, parsing,
// naming, encoding. One op is one line.
func BenchmarkServerTCP(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			s, pub := benchServer(b)
			var batch bytes.Buffer
			const perBatch = 1000
			for i := range perBatch {
				fmt.Fprintf(&batch, "<34>Oct 11 22:14:15 mymachine app[%d]: user login failed for lonvick on /dev/pts/8 attempt %06d\n", 1000+i%7, i)
			}
			cs := make([]net.Conn, conns)
			for i := range cs {
				c, err := net.Dial("tcp", s.TCPAddr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				cs[i] = c
			}
			b.SetBytes(int64(batch.Len() / perBatch))
			b.ResetTimer()
			start := pub.n.Load()
			batches := (b.N + perBatch - 1) / perBatch
			errc := make(chan error, conns)
			for ci, c := range cs {
				go func() {
					for i := ci; i < batches; i += conns {
						if _, err := c.Write(batch.Bytes()); err != nil {
							errc <- err
							return
						}
					}
					// The end of the input ends the last line: no wait for a
					// line that might continue it.
					errc <- c.(*net.TCPConn).CloseWrite()
				}()
			}
			for range cs {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			want := start + int64(batches*perBatch)
			deadline := time.Now().Add(time.Minute)
			for pub.n.Load() < want {
				if time.Now().After(deadline) {
					b.Fatalf("published %d of %d", pub.n.Load()-start, want-start)
				}
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
}

// BenchmarkServerUDP measures UDP ingest of RFC 3164 datagrams. The sender
// waits for the server every few datagrams so that none is lost to a full
// socket buffer; one op is one datagram.
func BenchmarkServerUDP(b *testing.B) {
	s, pub := benchServer(b)
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte("<34>Oct 11 22:14:15 mymachine app[1000]: user login failed for lonvick on /dev/pts/8 attempt 000001")
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := pub.n.Load()
	for i := range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if i%128 == 127 {
			for pub.n.Load() < start+int64(i+1)-64 {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for pub.n.Load() < start+int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("published %d of %d datagrams", pub.n.Load()-start, b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
