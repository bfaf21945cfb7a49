package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
	"github.com/logviewer/logviewer/transform"
)

func TestTCP(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		payloads  []string // written in order on one connection
		want      []string // suffixes of short_message, in order
		truncated int      // how many were cut
	}{
		{
			name:     "python style NUL-terminated lines stay whole",
			payloads: []string{"<14>tcp one\x00<14>tcp two\x00<11>tcp three\x00"},
			want:     []string{"tcp one", "tcp two", "tcp three"},
		},
		{
			name:     "every framing on one connection",
			payloads: []string{"<13>lf\n", "9 <13>octet", "<13>crlf\r\n<13>n", "ul\x00", "10 <13>octet2", "<13>end\n"},
			want:     []string{"lf", "octet", "crlf", "nul", "octet2", "end"},
		},
		{
			name:      "100 KB line then a normal one",
			payloads:  []string{"<14>" + strings.Repeat("x", 100_000) + "\n", "<14>after the big one\n"},
			want:      []string{"xxxxxxxxxx", "after the big one"},
			truncated: 1,
		},
		{
			name:      "oversize octet frame then a normal line",
			max:       1000,
			payloads:  []string{"2004 <14>" + strings.Repeat("y", 2000), "<14>next\n"},
			want:      []string{"yyyyyyyyyy", "next"},
			truncated: 1,
		},
		{
			name: "python tracebacks NUL-terminated stay one record each",
			payloads: []string{"<11>payment failed\nTraceback (most recent call last):\n  File \"x.py\"",
				", line 1\nKeyError: 'k'\x00<14>one-liner\x00<11>again\nTraceback\x00"},
			want: []string{"payment failed\nTraceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'k'",
				"one-liner", "again\nTraceback"},
		},
		{
			name:     "LF-terminated traceback continues until the next frame",
			payloads: []string{"<11>boom\nTraceback\n", "  File x\n", "<14>next\n"},
			want:     []string{"boom\nTraceback\n  File x", "next"},
		},
		{
			name:     "unterminated last line is delivered at close",
			payloads: []string{"<14>first\n<14>last words"},
			want:     []string{"first", "last words"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{MaxMessageSize: tc.max}, nil)
			c := ts.dial(t, "tcp", "")
			write(t, c, tc.payloads...)
			c.Close()
			recs := ts.pub.wait(t, len(tc.want))
			if len(recs) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(recs), len(tc.want))
			}
			maxSize := tc.max
			if maxSize == 0 {
				maxSize = DefaultMaxMessageSize
			}
			for i, r := range recs {
				if !strings.HasSuffix(r.msg(), tc.want[i]) {
					t.Errorf("record %d: short_message %.40q..., want it to end in %q", i, r.msg(), tc.want[i])
				}
				if len(r.msg()) > maxSize {
					t.Errorf("record %d: %d bytes, beyond the maximum %d", i, len(r.msg()), maxSize)
				}
				if r.name() != "127.0.0.1" || r.channel != "127.0.0.1" {
					t.Errorf("record %d: _app_name %q channel %q, want the peer IP", i, r.name(), r.channel)
				}
			}
			if tc.truncated > 0 && len(recs[0].msg()) < maxSize-10 {
				t.Errorf("truncated record holds %d bytes, want about %d", len(recs[0].msg()), maxSize)
			}
			if got := ts.value(t, "logviewer_ingest_truncated_total", ""); got != float64(tc.truncated) {
				t.Errorf("truncated counter %v, want %d", got, tc.truncated)
			}
			if got := ts.value(t, "logviewer_ingest_lines_total", "tcp"); got != float64(len(tc.want)) {
				t.Errorf("tcp lines counter %v, want %d", got, len(tc.want))
			}
			sent := 0
			for _, p := range tc.payloads {
				sent += len(p)
			}
			if got := ts.value(t, "logviewer_ingest_bytes_total", "tcp"); got != float64(sent) {
				t.Errorf("tcp bytes counter %v, want %d", got, sent)
			}
		})
	}
}

// TestTCPContinuationWait: a LF-ended message is held only until its next
// line says whether it goes on, or the wait ends; the connection stays open.
func TestTCPContinuationWait(t *testing.T) {
	tests := []struct {
		name     string
		wait     time.Duration
		payloads []string
		want     []string // whole short_messages, in order, delivered with the connection open
	}{
		{
			name:     "last line of a burst delivered after the wait",
			wait:     20 * time.Millisecond,
			payloads: []string{"<14>one\n<14>two\n"},
			want:     []string{"one", "two"},
		},
		{
			// The wait is long, so the lines written apart are surely joined.
			name:     "continuation written later is joined",
			wait:     time.Minute,
			payloads: []string{"<11>boom\n", "Traceback\n", "  File x\n", "<14>next\x00"},
			want:     []string{"boom\nTraceback\n  File x", "next"},
		},
		{
			name:     "continuation off: every LF ends a message",
			wait:     -1,
			payloads: []string{"<11>boom\nTraceback\n", "<14>next\x00"},
			want:     []string{"boom", "Traceback", "next"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{ContinuationWait: tc.wait}, nil)
			c := ts.dial(t, "tcp", "")
			defer c.Close()
			write(t, c, tc.payloads...)
			recs := ts.pub.wait(t, len(tc.want))
			var got []string
			for _, r := range recs {
				got = append(got, r.msg())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("short_messages %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTCPBatchesPerRead: the lines one read brings are published as one
// batch, in order, and the batch goes out before the next read waits: a
// lone line arrives with the connection open and nothing after it.
func TestTCPBatchesPerRead(t *testing.T) {
	ts := startServer(t, Config{ContinuationWait: -1}, nil)
	c := ts.dial(t, "tcp", "")
	var burst strings.Builder
	const n = 40 // about 1 KiB: one write, one read on loopback
	for i := range n {
		fmt.Fprintf(&burst, "<14>app%d: line %d\n", i%3, i)
	}
	write(t, c, burst.String())
	recs := ts.pub.wait(t, n)
	for i, r := range recs {
		if want := fmt.Sprintf("line %d", i); r.msg() != want {
			t.Fatalf("record %d: %q, want %q", i, r.msg(), want)
		}
	}
	if sizes := ts.pub.batchSizes(); len(sizes) >= n {
		t.Errorf("%d lines of one write came in %d batches %v: not batched", n, len(sizes), sizes)
	}
	write(t, c, "<14>lone line\n")
	if recs := ts.pub.wait(t, n+1); recs[n].msg() != "lone line" {
		t.Errorf("last record %q, want the lone line", recs[n].msg())
	}
	if got := ts.value(t, "logviewer_ingest_lines_total", "tcp"); got != n+1 {
		t.Errorf("lines counted %v, want %d", got, n+1)
	}
}

// TestTCPRecordByRecord: a Publisher without PublishBatch gets every
// record, in order, one by one.
func TestTCPRecordByRecord(t *testing.T) {
	ts := startServer(t, Config{ContinuationWait: -1}, func(s *Server) { s.pub = onlyPublish{s.pub} })
	c := ts.dial(t, "tcp", "")
	write(t, c, "<14>one\n<14>two\n<14>three\n")
	recs := ts.pub.wait(t, 3)
	for i, want := range []string{"one", "two", "three"} {
		if recs[i].msg() != want {
			t.Errorf("record %d: %q, want %q", i, recs[i].msg(), want)
		}
	}
	if sizes := ts.pub.batchSizes(); len(sizes) > 0 {
		t.Errorf("batches %v published through a Publisher without PublishBatch", sizes)
	}
}

// TestTCPManyConnections: connections are served concurrently and each
// keeps its own order and peer.
func TestTCPManyConnections(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	const conns, lines = 8, 200
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = ts.dial(t, "tcp", "")
	}
	// Interleave writes over the open connections.
	for l := 0; l < lines; l++ {
		for i, c := range cs {
			write(t, c, fmt.Sprintf("<14>c%d l%d\n", i, l))
		}
	}
	recs := ts.pub.wait(t, conns*lines)
	next := make([]int, conns)
	for _, r := range recs {
		var ci, li int
		msg := r.msg()
		k := strings.LastIndex(msg, "c")
		if _, err := fmt.Sscanf(msg[k:], "c%d l%d", &ci, &li); err != nil {
			t.Fatalf("unexpected record %q", msg)
		}
		if li != next[ci] {
			t.Fatalf("connection %d: line %d arrived, want %d", ci, li, next[ci])
		}
		next[ci]++
	}
	if g := ts.value(t, "logviewer_ingest_connections", "tcp"); g != conns {
		t.Errorf("connections gauge %v, want %d", g, conns)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestOddLineLoggedAtDebug: a cut line is logged at debug with its peer and
// the connection goes on.
func TestOddLineLoggedAtDebug(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := startServer(t, Config{MaxMessageSize: 100, Logger: log}, nil)
	write(t, ts.dial(t, "tcp", ""), "<14>"+strings.Repeat("o", 200)+"\n<14>fine\n")
	ts.pub.wait(t, 2)
	testsupport.Eventually(t, waitFor, func() bool {
		l := logs.String()
		return strings.Contains(l, "level=DEBUG") && strings.Contains(l, "peer=127.0.0.1") && strings.Contains(l, "truncated=true")
	}, "debug log of the cut line")
}

// TestRealClients: python3's SysLogHandler (TCP: NUL-terminated lines with
// no newline; UDP) and util-linux logger (octet counting, LF lines) against
// the server.
func TestRealClients(t *testing.T) {
	tests := []struct {
		name string
		send func(addr string)
		want []string // suffixes of short_message, in order
		// The records come over several connections, whose goroutines
		// publish them in no set order.
		anyOrder bool
	}{
		{
			name: "python tcp",
			send: func(addr string) {
				testsupport.SendPython(t, addr, "tcp", "info:py tcp one", "warning:py tcp two", "error:py tcp three")
			},
			want: []string{"py tcp one", "py tcp two", "py tcp three"},
		},
		{
			name: "python udp",
			send: func(addr string) { testsupport.SendPython(t, addr, "udp", "info:py udp one", "error:py udp two") },
			want: []string{"py udp one", "py udp two"},
		},
		{
			name: "logger octet counted rfc5424 over tcp",
			send: func(addr string) {
				testsupport.Logger(t, addr, "-T", "--octet-count", "--rfc5424", "-t", "app", "logger octet one")
				testsupport.Logger(t, addr, "-T", "--octet-count", "--rfc5424", "-t", "app", "logger octet two")
			},
			want:     []string{"logger octet one", "logger octet two"},
			anyOrder: true,
		},
		{
			name: "logger rfc3164 lines over tcp",
			send: func(addr string) {
				testsupport.Logger(t, addr, "-T", "--rfc3164", "-t", "app", "logger line one")
			},
			want: []string{"logger line one"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{}, nil)
			tc.send(ts.TCPAddr().String())
			recs := ts.pub.wait(t, len(tc.want))
			if len(recs) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(recs), len(tc.want))
			}
			if tc.anyOrder && len(recs) == 2 && strings.HasSuffix(recs[0].msg(), tc.want[1]) { // the two came the other way
				recs[0], recs[1] = recs[1], recs[0]
			}
			for i, r := range recs {
				if !strings.HasSuffix(r.msg(), tc.want[i]) || r.name() != "127.0.0.1" {
					t.Errorf("record %d: %q from %q, want %q from 127.0.0.1", i, r.msg(), r.name(), tc.want[i])
				}
			}
		})
	}
}

// TestHandlerGivesBackBatchBuffer: a handler's batch buffer grows for a
// burst and is given back once a batch comes out small, so an idle
// connection holds no burst-sized buffer.
func TestHandlerGivesBackBatchBuffer(t *testing.T) {
	s := NewServer(Config{Addr: "127.0.0.1:0"}, &transform.Encoder{Hostname: "test", Group: "lr"}, &collector{}, metrics.New(prometheus.NewRegistry()))
	h := s.newBatchingHandler("tcp")
	peer := peerName{name: "host", channel: "host"}
	line := []byte("<14>app: " + strings.Repeat("x", 400))
	for range 100 { // under both batch bounds: one batch
		h.handle(context.Background(), peer, line, false, time.Now())
	}
	h.flush(context.Background())
	if cap(h.out) < 100*len(line) {
		t.Fatalf("batch buffer of %d bytes after a burst; the test expects it grown", cap(h.out))
	}
	h.handle(context.Background(), peer, line, false, time.Now())
	h.flush(context.Background())
	if cap(h.out) > keptBatchBytes {
		t.Errorf("batch buffer of %d bytes kept after a small batch, want at most %d", cap(h.out), keptBatchBytes)
	}
}
