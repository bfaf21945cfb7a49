package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/logviewer/logviewer/internal/metrics"
)

// DefaultUDPBuffer is the UDP socket receive buffer the daemon asks for
// unless told otherwise: room for bursts while the reader is busy.
const DefaultUDPBuffer = 8 << 20

const (
	// udpReadBuffer is what listenUDP asks for, for sockets other than the
	// syslog one, which asks for Config.UDPBuffer.
	udpReadBuffer = 8 << 20
	// udpBatchLen datagrams are read per system call (recvmmsg on Linux).
	udpBatchLen = 64
	// udpBatchesOut batches may be read and not yet handled: one being
	// handled while the reader fills the next.
	udpBatchesOut = 2
	// udpMaxDatagram holds any UDP payload (65,507 bytes over IPv4, 65,527
	// over IPv6), so no datagram is cut by the read; MaxMessageSize cuts.
	udpMaxDatagram = 64 << 10
)

// udpSocketInfo is what tuneUDPSocket got from the kernel.
type udpSocketInfo struct {
	asked        int    // receive buffer asked for; 0: none
	granted      int    // receive buffer granted, comparable to asked (0: unknown)
	how          string // the option that set it, or "kernel default"
	dropsCounted bool   // the kernel reports its drops (SO_RXQ_OVFL)
}

// listenSyslogUDP binds addr, asks for Config.UDPBuffer of receive buffer
// and turns on the kernel's drop counter; the reader logs what the kernel
// granted once it runs.
func (s *Server) listenSyslogUDP(addr string) (*net.UDPConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, bareError(err))
	}
	u := pc.(*net.UDPConn)
	// A failure leaves the socket working with what it has; logged later.
	s.udpSocket, s.udpSocketErr = tuneUDPSocket(u, s.cfg.UDPBuffer)
	return u, nil
}

// logUDPSocket says once what the kernel granted the UDP socket. It is not
// said at Listen, where the daemon may yet fail to start and should print
// only why.
func (s *Server) logUDPSocket() {
	if s.udpSocketErr != nil {
		s.log.Warn("udp socket options", slog.Any("error", s.udpSocketErr))
	}
	info := s.udpSocket
	attrs := []any{slog.Int("asked", info.asked), slog.Int("granted", info.granted),
		slog.String("how", info.how), slog.Bool("kernel_drops_counted", info.dropsCounted)}
	if info.granted > 0 && info.granted < info.asked {
		attrs = append(attrs, slog.String("hint",
			"the kernel caps the buffer at net.core.rmem_max; raise it (sysctl -w net.core.rmem_max=BYTES) or run with CAP_NET_ADMIN"))
	}
	s.log.Info("udp receive buffer", attrs...)
}

// udpBatchReader reads datagrams in batches: ipv4.PacketConn and
// ipv6.PacketConn, whose Message types are one type.
type udpBatchReader interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// newUDPBatchReader picks the ipv4 or ipv6 reader by the socket's family.
// A wildcard address such as ":10514" binds an IPv6 socket when the host
// has IPv6; that socket receives IPv4 peers too, as IPv4-mapped addresses.
func newUDPBatchReader(c *net.UDPConn) udpBatchReader {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// newUDPMessages preallocates one batch: n slots of size bytes in one
// block, reused for every read (64 x 64 KiB = 4 MiB for the one reader of a
// server), each with oob bytes for its control messages.
func newUDPMessages(n, size, oob int) []ipv4.Message {
	buf := make([]byte, n*size)
	var oobs []byte
	if oob > 0 {
		oobs = make([]byte, n*oob)
	}
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{buf[i*size : (i+1)*size : (i+1)*size]}
		if oob > 0 {
			ms[i].OOB = oobs[i*oob : (i+1)*oob : (i+1)*oob]
		}
	}
	return ms
}

// dropCounter turns the kernel's cumulative count of dropped datagrams, a
// uint32 that starts at 0 with the socket and wraps, into increases.
type dropCounter struct{ last uint32 }

// advance returns how much the count grew since the value last seen. At the
// first sighting that is the whole count: the socket is ours from its start.
func (c *dropCounter) advance(v uint32) uint32 {
	d := v - c.last // modular: right across a wrap
	c.last = v
	return d
}

// udpReader reads datagrams, one message each, in batches that one
// goroutine reads and another handles. Datagrams from a peer whose
// name is known are handled at once; those from a peer being looked up wait,
// in order, in that peer's queue while other peers' datagrams go on. A
// queue is drained by a goroutine of its own once the name (or the IP, after
// the wait) is known.
type udpReader struct {
	s           *Server
	h           *handler
	readErr     prometheus.Counter
	kernelDrops prometheus.Counter
	// dropsSinceLog counts kernel drops not yet said in a log line.
	dropsSinceLog uint64
	drops         dropCounter

	// The peer last named in this batch, named again without asking the
	// resolver; the handling goroutine alone uses them.
	last     netip.Addr
	lastPeer peerName
	lastOK   bool

	// lookups holds the datagrams of peers whose names are being looked up.
	lookups *lookupQueues
}

func newUDPReader(s *Server) *udpReader {
	u := &udpReader{
		s:           s,
		h:           s.newBatchingHandler("udp"),
		readErr:     s.met.Dropped.WithLabelValues(metrics.DropUDPBuffer),
		kernelDrops: s.met.Dropped.WithLabelValues(metrics.DropUDPKernel),
	}
	u.lookups = newLookupQueues(s.names, &s.wg, func() handleFunc {
		return s.newHandler("udp").handle
	})
	return u
}

// udpBatch is what the reader hands the handling goroutine: datagrams
// copied out of the read buffers, which the next read reuses. A batch is
// recycled, so data keeps its capacity (at most udpBatchLen times
// MaxMessageSize or 64 KiB, after a flood of large datagrams).
type udpBatch struct {
	received time.Time
	data     []byte // the datagrams, one after another
	items    []udpDatagram
}

// udpDatagram is one datagram of a batch; its bytes end at end in the
// batch's data and start where the one before ends.
type udpDatagram struct {
	from      netip.Addr
	end       int
	truncated bool
}

// run reads until shutdown stops the reads, and hands every batch to a
// goroutine that handles it, so that reading the next batch and handling
// this one use two cores. A read error costs the datagram (counted, logged
// rate-limited), never the reader.
func (u *udpReader) run(ctx, pubCtx context.Context) {
	s := u.s
	s.logUDPSocket()
	work := make(chan *udpBatch, udpBatchesOut-1)
	free := make(chan *udpBatch, udpBatchesOut)
	for range udpBatchesOut {
		free <- &udpBatch{items: make([]udpDatagram, 0, udpBatchLen)}
	}
	s.wg.Go(func() { u.handleBatches(ctx, pubCtx, work, free) })
	defer close(work) // the handler finishes what it was given, then returns

	r := newUDPBatchReader(s.udp)
	ms := newUDPMessages(udpBatchLen, udpMaxDatagram, udpOOBSize())
	var backoff time.Duration
	for {
		n, err := r.ReadBatch(ms, 0)
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			u.readErr.Inc()
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			if n, ok := s.readLog.Allow(); ok {
				s.log.Warn("udp read failed", slog.Any("error", err), slog.Int64("suppressed", n))
			}
			time.Sleep(backoff) // an error that repeats must not spin
			continue
		}
		backoff = 0
		read := ms[:n]
		u.countKernelDrops(read)
		b := <-free // waits while the handler is behind: the socket buffer holds the rest
		// One reception time for the batch: its datagrams were waiting together.
		b.received, b.data, b.items = time.Now(), b.data[:0], b.items[:0]
		size := 0
		for i := range read {
			m := &read[i]
			size += m.N
			from, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue // not from recvmmsg on a UDP socket
			}
			d := stripFrameEnd(m.Buffers[0][:m.N])
			if len(d) == 0 {
				continue
			}
			truncated := false
			if len(d) > s.cfg.MaxMessageSize {
				d, truncated = d[:s.cfg.MaxMessageSize], true
			}
			b.data = append(b.data, d...)
			b.items = append(b.items, udpDatagram{from: from.AddrPort().Addr().Unmap(), end: len(b.data), truncated: truncated})
		}
		u.h.bytes.Add(float64(size))
		if len(b.items) == 0 {
			free <- b
			continue
		}
		work <- b
	}
}

// handleBatches handles the datagrams of each batch in order, until work
// is closed.
func (u *udpReader) handleBatches(ctx, pubCtx context.Context, work <-chan *udpBatch, free chan<- *udpBatch) {
	for b := range work {
		u.lastOK = false
		start := 0
		for _, d := range b.items {
			u.dispatch(ctx, pubCtx, d.from, b.data[start:d.end], d.truncated, b.received)
			start = d.end
		}
		u.h.flush(pubCtx)
		free <- b
	}
}

// countKernelDrops counts the datagrams the kernel dropped since it last
// said. Its count is cumulative and rides on every datagram received after
// a drop, so the batch's last one that carries it is enough.
func (u *udpReader) countKernelDrops(batch []ipv4.Message) {
	for i := len(batch) - 1; i >= 0; i-- {
		m := &batch[i]
		if m.NN == 0 {
			continue
		}
		if v, ok := kernelDropCount(m.OOB[:m.NN]); ok {
			if d := u.drops.advance(v); d > 0 {
				u.kernelDrops.Add(float64(d))
				u.dropsSinceLog += uint64(d)
				if n, ok := u.s.kernelDropLog.Allow(); ok {
					u.s.log.Warn("the kernel dropped UDP datagrams: the socket's receive buffer was full (see --udp-buffer)",
						slog.Uint64("dropped", u.dropsSinceLog), slog.Int64("suppressed_lines", n))
					u.dropsSinceLog = 0
				}
			}
			return
		}
	}
}

// dispatch handles a datagram now, or queues it behind its peer's lookup.
func (u *udpReader) dispatch(ctx, pubCtx context.Context, a netip.Addr, d []byte, truncated bool, received time.Time) {
	if u.lookups.queueIfWaiting(a, d, truncated, received) {
		return // keeps this peer's order
	}
	if u.lastOK && a == u.last {
		u.h.handle(pubCtx, u.lastPeer, d, truncated, received)
		return
	}
	peer, ok, e := u.s.names.get(a)
	if ok {
		u.last, u.lastPeer, u.lastOK = a, peer, true
		u.h.handle(pubCtx, peer, d, truncated, received)
		return
	}
	u.lookups.start(ctx, pubCtx, a, e, d, truncated, received)
}
