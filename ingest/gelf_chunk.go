package ingest

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// GELF chunking (GELF 1.1 over UDP): a message too big for one datagram is
// sent as up to 128 chunks, each with a 12-byte header: the magic 0x1e 0x0f,
// an 8-byte message ID, the chunk's sequence number and the chunk count.
const (
	gelfChunkHeader = 12
	gelfMaxChunks   = 128

	// Reassembly bounds: a message whose chunks have not all come this long
	// after its first one is dropped; all pending messages together hold at
	// most gelfPendingBytes of chunks and there are at most
	// gelfPendingMessages of them, past which the oldest are dropped.
	gelfChunkTimeout    = 5 * time.Second
	gelfPendingBytes    = 32 << 20
	gelfPendingMessages = 4096
)

// isGELFChunk reports whether a datagram is a GELF chunk.
func isGELFChunk(d []byte) bool { return len(d) >= 2 && d[0] == 0x1e && d[1] == 0x0f }

// chunkKey names one chunked message: its sender and its ID, so that two
// senders choosing the same ID never mix their chunks.
type chunkKey struct {
	peer netip.Addr
	id   [8]byte
}

// pendingMessage is a chunked message some of whose chunks have come.
type pendingMessage struct {
	key    chunkKey
	first  time.Time // when its first chunk came
	chunks [][]byte  // by sequence number
	have   [gelfMaxChunks / 64]uint64
	n      int // chunks received
	bytes  int // their payload bytes
	elem   *list.Element
}

// chunkAssembler puts chunked GELF messages back together, within bounds of
// time, memory and count. It is safe for concurrent use: the UDP reader
// adds chunks while a ticker expires old messages.
type chunkAssembler struct {
	timeout     time.Duration
	maxBytes    int
	maxMessages int
	now         func() time.Time // injectable for tests
	// dropped is told of every incomplete message given up on (expired or
	// evicted), with a.mu held; it must not call back into the assembler.
	dropped func(peer netip.Addr, have, count int)

	mu      sync.Mutex
	pending map[chunkKey]*pendingMessage
	order   list.List // of *pendingMessage, oldest first
	bytes   int       // payload bytes held by pending messages
}

func newChunkAssembler(dropped func(peer netip.Addr, have, count int)) *chunkAssembler {
	return &chunkAssembler{
		timeout:     gelfChunkTimeout,
		maxBytes:    gelfPendingBytes,
		maxMessages: gelfPendingMessages,
		now:         time.Now,
		dropped:     dropped,
		pending:     make(map[chunkKey]*pendingMessage),
	}
}

// add takes one chunk from peer. When it completes its message, add returns
// the message's payload, its chunks joined in sequence order whatever order
// they came in; until then it returns nil. A chunk that breaks the format
// returns an error (a *gelfDrop); a repeated chunk is ignored. The payload
// may share memory with d.
func (a *chunkAssembler) add(peer netip.Addr, d []byte) ([]byte, error) {
	if len(d) < gelfChunkHeader {
		return nil, gelfInvalid("chunk of %d bytes, shorter than its header", len(d))
	}
	key := chunkKey{peer: peer}
	copy(key.id[:], d[2:10])
	seq, count := int(d[10]), int(d[11])
	if count == 0 || count > gelfMaxChunks || seq >= count {
		return nil, gelfInvalid("chunk %d of %d", seq, count)
	}
	data := d[gelfChunkHeader:]
	if count == 1 {
		return data, nil
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.expireLocked(now)
	m := a.pending[key]
	if m != nil && len(m.chunks) != count {
		a.remove(m)
		return nil, gelfInvalid("chunk count %d after %d for one message", count, len(m.chunks))
	}
	if m == nil {
		for len(a.pending) >= a.maxMessages {
			a.dropOldest()
		}
		m = &pendingMessage{key: key, first: now, chunks: make([][]byte, count)}
		m.elem = a.order.PushBack(m)
		a.pending[key] = m
	}
	if m.have[seq/64]&(1<<(seq%64)) != 0 {
		return nil, nil // a repeat
	}
	for a.bytes+len(data) > a.maxBytes && a.order.Front().Value.(*pendingMessage) != m {
		a.dropOldest()
	}
	if a.bytes+len(data) > a.maxBytes {
		// This message alone is past the budget (only with a tiny budget).
		a.drop(m)
		return nil, nil
	}
	m.chunks[seq] = append([]byte(nil), data...)
	m.have[seq/64] |= 1 << (seq % 64)
	m.n++
	m.bytes += len(data)
	a.bytes += len(data)
	if m.n < count {
		return nil, nil
	}
	out := make([]byte, 0, m.bytes)
	for _, c := range m.chunks {
		out = append(out, c...)
	}
	a.remove(m)
	return out, nil
}

// expire drops the messages that have waited for their chunks longer than
// the timeout.
func (a *chunkAssembler) expire() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expireLocked(a.now())
}

func (a *chunkAssembler) expireLocked(now time.Time) {
	for e := a.order.Front(); e != nil; e = a.order.Front() {
		if now.Sub(e.Value.(*pendingMessage).first) < a.timeout {
			return
		}
		a.dropOldest()
	}
}

// dropAll gives up on every pending message: the receiver is stopping.
func (a *chunkAssembler) dropAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.order.Len() > 0 {
		a.dropOldest()
	}
}

// dropOldest gives up on the oldest pending message. a.mu is held.
func (a *chunkAssembler) dropOldest() {
	if e := a.order.Front(); e != nil {
		a.drop(e.Value.(*pendingMessage))
	}
}

// drop gives up on m and says so. a.mu is held.
func (a *chunkAssembler) drop(m *pendingMessage) {
	a.remove(m)
	if a.dropped != nil {
		a.dropped(m.key.peer, m.n, len(m.chunks))
	}
}

// remove forgets m and its chunks. a.mu is held.
func (a *chunkAssembler) remove(m *pendingMessage) {
	delete(a.pending, m.key)
	a.order.Remove(m.elem)
	a.bytes -= m.bytes
}

// pendingStats returns the chunk bytes held and the number of messages
// waiting for chunks.
func (a *chunkAssembler) pendingStats() (bytes, messages int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytes, len(a.pending)
}
