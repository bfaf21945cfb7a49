package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"

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

// BenchmarkServerUDP measures UDP ingest of RFC 3164 datagrams, end to end
// from a client's socket to a publisher that discards; one op is one
// datagram, counted only once published. The client sends 64 datagrams per
// sendmmsg and keeps at most udpBenchWindow of them unpublished, within
// what the socket buffer holds, so that none is lost and the client, one
// system call per batch, costs the machine as little as a client can.
func BenchmarkServerUDP(b *testing.B) {
	s, pub := benchServer(b)
	// The same buffer for every reader measured: 4 MiB, or rmem_max.
	if err := s.udp.SetReadBuffer(4 << 20); err != nil {
		b.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, s.UDPAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	msg := []byte("<34>Oct 11 22:14:15 mymachine app[1000]: user login failed for lonvick on /dev/pts/8 attempt 000001")
	const batch = 64
	ms := make([]ipv4.Message, batch)
	for i := range ms {
		ms[i].Buffers = [][]byte{msg}
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := pub.n.Load()
	for sent := 0; sent < b.N; {
		for pub.n.Load() < start+int64(sent)-udpBenchWindow {
			time.Sleep(20 * time.Microsecond)
		}
		n, err := pc.WriteBatch(ms[:min(batch, b.N-sent)], 0)
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	deadline := time.Now().Add(time.Minute)
	for pub.n.Load() < start+int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("published %d of %d datagrams", pub.n.Load()-start, b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// udpBenchWindow datagrams may be sent and not yet published: about a
// quarter of what a 4 MiB socket buffer holds of them on loopback.
const udpBenchWindow = 1024

// gatedPublisher counts records; Publish waits while gate is write-locked,
// and done gets a value when the count reaches target.
type gatedPublisher struct {
	gate   sync.RWMutex
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (p *gatedPublisher) Publish(context.Context, string, []byte) error {
	p.gate.RLock()
	p.gate.RUnlock()
	if p.n.Add(1) == p.target.Load() {
		p.done <- struct{}{}
	}
	return nil
}

// BenchmarkServerUDPDrain measures what the UDP reader alone can take, as
// when the senders are other machines: with the publisher held, the socket
// buffer is filled with udpDrainRound datagrams (not timed), then the
// publisher is let go and the time until all are published is measured.
// One op is one datagram.
func BenchmarkServerUDPDrain(b *testing.B) {
	pub := &gatedPublisher{done: make(chan struct{}, 1)}
	s := NewServer(Config{Addr: "127.0.0.1:0"}, &transform.Encoder{Hostname: "bench", Group: "lr"}, pub,
		metrics.New(prometheus.NewRegistry()))
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	if err := s.udp.SetReadBuffer(4 << 20); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { s.Serve(ctx); close(served) }()
	defer func() { cancel(); <-served }()

	c, err := net.DialUDP("udp", nil, s.UDPAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	msg := []byte("<34>Oct 11 22:14:15 mymachine app[1000]: user login failed for lonvick on /dev/pts/8 attempt 000001")
	ms := make([]ipv4.Message, 64)
	for i := range ms {
		ms[i].Buffers = [][]byte{msg}
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		round := min(udpDrainRound, b.N-done)
		pub.gate.Lock()
		pub.target.Store(pub.n.Load() + int64(round))
		for sent := 0; sent < round; {
			n, err := pc.WriteBatch(ms[:min(len(ms), round-sent)], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		b.StartTimer()
		pub.gate.Unlock()
		select {
		case <-pub.done:
		case <-time.After(time.Minute):
			b.Fatalf("published %d of %d datagrams: the socket buffer dropped some", pub.n.Load()-(pub.target.Load()-int64(round)), round)
		}
		done += round
	}
}

// udpDrainRound datagrams fit a 4 MiB socket buffer on loopback with room.
const udpDrainRound = 4096
