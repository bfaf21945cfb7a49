package publish

import (
	"context"
	"sync"
	"time"
)

// recordOverhead is what the buffer charges per record beyond its JSON
// bytes (channel name, offsets), so a flood of tiny records is bounded too.
const recordOverhead = 48

// pendingRecord is one record waiting in a pendingBatch; its GELF bytes are
// data[start:end] of the batch.
type pendingRecord struct {
	channel    string
	start, end int
}

func (r *pendingRecord) size() int { return r.end - r.start + recordOverhead }

// pendingBatch is up to batchSize records that go to Redis in one pipeline.
// Records are copied into one growing byte slice, reused once the batch is
// delivered, so Publish does not allocate per record.
type pendingBatch struct {
	data  []byte
	recs  []pendingRecord
	head  int       // records before head were dropped to respect the byte bound
	first time.Time // when its first record came
}

// live returns how many records of b are still to deliver and their size.
func (b *pendingBatch) live() (n, bytes int) {
	for i := b.head; i < len(b.recs); i++ {
		bytes += b.recs[i].size()
	}
	return len(b.recs) - b.head, bytes
}

func (b *pendingBatch) reset() {
	b.data = b.data[:0]
	b.recs = b.recs[:0]
	b.head = 0
}

// pubBuffer is the bounded queue between Publish and the Redis writer. It
// holds whole batches; beyond limit bytes it drops the oldest records.
type pubBuffer struct {
	limit     int
	batchSize int

	mu      sync.Mutex
	batches []*pendingBatch // oldest first; the last one is being filled
	bytes   int             // size of the records still queued
	free    []*pendingBatch
	room    chan struct{} // closed when a batch is taken out; nil when no one waits
}

// roomPoll bounds how long pushWhenRoom sleeps before it checks again whether
// waiting is still right (Redis may have become unreachable meanwhile).
const roomPoll = 100 * time.Millisecond

// pushWhenRoom is push, but while the record does not fit and reachable
// says Redis takes records it first waits for room: then the writer is only
// slower than the senders, and waiting slows TCP senders down (flow control)
// instead of dropping records Redis would take a moment later. While Redis
// is unreachable it does not wait, and push drops the oldest to stay within
// the bound. It stops waiting when ctx ends or closing is closed. The check
// and the push happen under one lock, so concurrent publishers cannot
// overfill the room they saw.
func (q *pubBuffer) pushWhenRoom(ctx context.Context, closing <-chan struct{}, reachable func() bool,
	channel string, gelf []byte) (dropped int, wake bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushWhenRoomLocked(ctx, closing, reachable, channel, gelf)
}

// pushWhenRoomLocked is pushWhenRoom with q.mu held; it lets go of it while
// it waits.
func (q *pubBuffer) pushWhenRoomLocked(ctx context.Context, closing <-chan struct{}, reachable func() bool,
	channel string, gelf []byte) (dropped int, wake bool) {
	size := len(gelf) + recordOverhead
	var poll *time.Timer
	// An empty buffer takes any record, however large: never wait then.
	for q.bytes > 0 && q.bytes+size > q.limit && reachable() {
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		if poll == nil {
			poll = time.NewTimer(roomPoll)
		} else {
			poll.Reset(roomPoll)
		}
		stop := false
		select {
		case <-room:
		case <-poll.C:
		case <-ctx.Done():
			stop = true
		case <-closing:
			stop = true
		}
		q.mu.Lock()
		if stop {
			break
		}
	}
	if poll != nil {
		poll.Stop()
	}
	return q.pushLocked(channel, gelf)
}

// signalRoom wakes the publishers in pushWhenRoom so that they look again.
func (q *pubBuffer) signalRoom() {
	q.mu.Lock()
	q.signalRoomLocked()
	q.mu.Unlock()
}

func (q *pubBuffer) signalRoomLocked() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

func newPubBuffer(limit, batchSize int) *pubBuffer {
	return &pubBuffer{limit: limit, batchSize: batchSize}
}

// push copies one record in. It returns how many old records it dropped to
// stay within the limit, and whether the writer should be woken: the queue
// was empty, or a batch just became full.
func (q *pubBuffer) push(channel string, gelf []byte) (dropped int, wake bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushLocked(channel, gelf)
}

// pushLocked is push with q.mu held.
func (q *pubBuffer) pushLocked(channel string, gelf []byte) (dropped int, wake bool) {
	n := len(q.batches)
	wasEmpty := n == 0
	var b *pendingBatch
	if n > 0 && len(q.batches[n-1].recs) < q.batchSize {
		b = q.batches[n-1]
	} else {
		b = q.newBatch()
		b.first = time.Now()
		q.batches = append(q.batches, b)
	}
	start := len(b.data)
	b.data = append(b.data, gelf...)
	b.recs = append(b.recs, pendingRecord{channel: channel, start: start, end: len(b.data)})
	q.bytes += len(gelf) + recordOverhead
	wake = wasEmpty || len(b.recs) == q.batchSize
	for q.bytes > q.limit && len(q.batches) > 0 {
		q.dropOldest()
		dropped++
	}
	return dropped, wake
}

// dropOldest removes the oldest queued record. q.mu is held.
func (q *pubBuffer) dropOldest() {
	b := q.batches[0]
	if b.head < len(b.recs) {
		q.bytes -= b.recs[b.head].size()
		b.head++
	}
	if b.head == len(b.recs) {
		q.batches = q.batches[1:]
		q.recycle(b)
	}
}

func (q *pubBuffer) newBatch() *pendingBatch {
	if n := len(q.free); n > 0 {
		b := q.free[n-1]
		q.free = q.free[:n-1]
		return b
	}
	return &pendingBatch{recs: make([]pendingRecord, 0, q.batchSize)}
}

// recycle keeps b for reuse. q.mu is held.
func (q *pubBuffer) recycle(b *pendingBatch) {
	b.reset()
	if len(q.free) < 4 {
		q.free = append(q.free, b)
	}
}

// take removes and returns the oldest batch. Unless partial is set it only
// does so when that batch is full (or others queue behind it). It returns nil
// when there is nothing to take.
func (q *pubBuffer) take(partial bool) *pendingBatch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.batches) == 0 {
		return nil
	}
	b := q.batches[0]
	if !partial && len(q.batches) == 1 && len(b.recs) < q.batchSize {
		return nil
	}
	q.batches[0] = nil
	q.batches = q.batches[1:]
	_, size := b.live()
	q.bytes -= size
	q.signalRoomLocked()
	return b
}

// requeue puts back a batch that could not be delivered, as the oldest, and
// applies the bound to it. It returns how many records that dropped.
func (q *pubBuffer) requeue(b *pendingBatch) (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, size := b.live()
	if n == 0 {
		q.recycle(b)
		return 0
	}
	// When b is the only batch, push may append newer records to it: they
	// stay behind the old ones, so the order holds.
	q.batches = append(q.batches, nil)
	copy(q.batches[1:], q.batches)
	q.batches[0] = b
	q.bytes += size
	for q.bytes > q.limit && len(q.batches) > 0 {
		q.dropOldest()
		dropped++
	}
	return dropped
}

// release recycles a delivered batch.
func (q *pubBuffer) release(b *pendingBatch) {
	q.mu.Lock()
	q.recycle(b)
	q.mu.Unlock()
}

// len returns the number of records queued (not counting one being sent).
func (q *pubBuffer) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, b := range q.batches {
		k, _ := b.live()
		n += k
	}
	return n
}

// head returns how many records the oldest batch holds and when its first
// record came (zero when nothing is queued).
func (q *pubBuffer) head() (n int, first time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.batches) == 0 {
		return 0, time.Time{}
	}
	b := q.batches[0]
	return len(b.recs) - b.head, b.first
}

// empty reports whether nothing is queued.
func (q *pubBuffer) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.batches) == 0
}
