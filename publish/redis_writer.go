package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Writer pacing.
const (
	defaultBatchSize = 512                   // records per pipeline at most
	defaultLinger    = time.Millisecond      // a partial batch waits at most this long, unless the rate is high
	defaultMaxLinger = 4 * time.Millisecond  // at a high rate a partial batch waits at most this long
	highRateBatch    = 32                    // records in a partial batch after the linger that make the rate high
	backoffMin       = 50 * time.Millisecond // first retry delay after a Redis error
	backoffMax       = 2 * time.Second       // retry delay cap
	idlePing         = time.Second           // health probe when nothing is published
	drainTimeout     = 3 * time.Second       // Close delivers what is queued within this
	logEvery         = time.Second           // hot-path warnings at most this often
	sendTimeout      = 5 * time.Second       // one pipeline round trip at most
)

// redisWriter sends the records queued by Publish to Redis in batches, one
// transaction per batch of up to defaultBatchSize records (see writeFlush),
// and keeps them while Redis is unreachable.
type redisWriter struct {
	client    redis.UniversalClient
	keys      redisKeys
	history   int // records kept per channel
	step      int // records between two trim marks (see addEntry)
	echo      int // echoNone, echoPlain or echoWithID
	buf       *pubBuffer
	wake      chan struct{} // 1 slot: records queued or a batch full
	closing   chan struct{} // closed by Close: deliver what is queued, then stop
	linger    time.Duration
	maxLinger time.Duration // at a high rate (see next)
	lastTake  time.Time     // when next last took a batch
	log       *slog.Logger
	dropped   prometheus.Counter
	dropLog   *rateLimited
	errLog    *rateLimited
	setHealth func(error)
	// reachable is whether the last attempt to reach Redis worked; Publish
	// waits for room in the buffer only then (see pubBuffer.waitRoom).
	reachable atomic.Bool

	// scratch of send, reused between batches
	channelNo map[string]int
	blobs     []channelBlob
	echoRecs  []echoRecord  // the records of a flush, for --redis-publish-records
	group     []channelBlob // cluster: the blobs of one bucket (see writeClusterFlush)
	groupEcho []echoRecord  // cluster: the echo records of one bucket
	groupNo   []int         // cluster: per blob its index in group

	registered map[string]uint64 // channel -> when this writer last renewed it in the registry (ms)
	renewing   []string          // channels whose registry entry the flush being written renews
	isStream   map[string]bool   // channels whose key is known to hold a stream
}

// run delivers batches until Close, then drains what is queued; it closes
// done when it returns.
func (w *redisWriter) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	w.probe(ctx)
	w.serve(ctx)
	w.drain(ctx)
}

// serve delivers batches as they fill, or within the linger time, until
// ctx ends or Close; after a failure it waits (backoff) before the next.
func (w *redisWriter) serve(ctx context.Context) {
	var backoff time.Duration
	timers := newWriterTimers()
	defer timers.stop()
	for {
		if backoff > 0 && !w.pause(ctx, backoff) {
			return
		}
		b, idle, ok := w.next(ctx, timers)
		switch {
		case !ok:
			return
		case idle:
			w.probe(ctx)
		case b != nil:
			backoff = w.deliver(ctx, b, backoff)
		}
	}
}

// pause waits d after a failed delivery; it returns false when ctx ends
// or Close is called first. A cluster client rereads its slot map a
// little before the end: the map read right after the failure may still
// show a failed master that a promoted replica has replaced since.
func (w *redisWriter) pause(ctx context.Context, d time.Duration) bool {
	lead := min(d/4, 100*time.Millisecond)
	for i, step := range []time.Duration{d - lead, lead} {
		if i == 1 && w.keys.cluster {
			reloadClusterState(ctx, w.client)
		}
		select {
		case <-ctx.Done():
			return false
		case <-w.closing:
			return false
		case <-time.After(step):
		}
	}
	return true
}

// writerTimers are the timers next reuses from one batch to the next.
type writerTimers struct{ idle, linger *time.Timer }

func newWriterTimers() *writerTimers {
	t := &writerTimers{idle: time.NewTimer(idlePing), linger: time.NewTimer(time.Hour)}
	t.linger.Stop()
	return t
}

func (t *writerTimers) stop() {
	t.idle.Stop()
	t.linger.Stop()
}

// next waits for the next batch to send: a full one at once; a partial one
// once its first record is the linger time old (a lone record goes within
// it, however long the last send took). When records come fast
// (highRateBatch or more in the batch at that age) a partial batch waits on
// for a full one, up to maxLinger old, so that twice the records make the
// same number of flushes, not twice as many, when the rate is high: a flush
// costs Redis much per flush beyond its records (BenchmarkRedisFlush). It
// returns idle when nothing came for idlePing (time to probe Redis), and
// ok false when ctx ends or Close is called.
func (w *redisWriter) next(ctx context.Context, t *writerTimers) (b *pendingBatch, idle, ok bool) {
	if b = w.take(false); b != nil {
		return b, false, true
	}
	if w.buf.empty() {
		t.idle.Reset(idlePing)
		defer t.idle.Stop()
		select {
		case <-ctx.Done():
			return nil, false, false
		case <-w.closing:
			return nil, false, false
		case <-w.wake:
			return nil, false, true // look again
		case <-t.idle.C:
			return nil, true, true
		}
	}
	for {
		n, first := w.buf.head()
		now := time.Now()
		age := now.Sub(first)
		limit := w.linger
		// The rate is high when the batch holds highRateBatch records or
		// more, and as many per millisecond came since the last batch was
		// taken: a sender that writes its lines in bursts every few
		// milliseconds at a low rate keeps the short linger.
		if age >= w.linger && n >= highRateBatch && int64(n)*int64(time.Millisecond) >= highRateBatch*int64(now.Sub(w.lastTake)) {
			limit = max(w.maxLinger, w.linger)
		}
		if age >= limit {
			return w.take(true), false, true
		}
		// Wait for more: a wake says a batch is full (or is stale).
		t.linger.Reset(limit - age)
		select {
		case <-ctx.Done():
			t.linger.Stop()
			return nil, false, false
		case <-w.closing:
			t.linger.Stop()
			return nil, false, false
		case <-w.wake:
		case <-t.linger.C:
		}
		t.linger.Stop()
		if b = w.take(false); b != nil {
			return b, false, true
		}
	}
}

// take takes a batch from the buffer (see pubBuffer.take) and notes when.
func (w *redisWriter) take(partial bool) *pendingBatch {
	b := w.buf.take(partial)
	if b != nil {
		w.lastTake = time.Now()
	}
	return b
}

// drain delivers what is still queued after Close, batch after batch,
// until the buffer is empty, a delivery fails, or ctx ends; it does not
// try while Redis is unreachable.
func (w *redisWriter) drain(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if !w.reachable.Load() {
		if n := w.buf.len(); n > 0 {
			w.log.Warn("redis bus closing while Redis is unreachable; records not delivered", slog.Int("records", n))
		}
		return
	}
	for b := w.buf.take(true); b != nil; b = w.buf.take(true) {
		if w.deliver(ctx, b, 0) > 0 {
			if ctx.Err() == nil {
				w.log.Warn("redis bus closing while Redis is unreachable; records not delivered",
					slog.Int("records", w.buf.len()))
			}
			return
		}
	}
}

// deliver sends b and returns the backoff before the next attempt: 0 when
// it went, the next step after backoff when it failed (b is then queued
// again as the oldest).
func (w *redisWriter) deliver(ctx context.Context, b *pendingBatch, backoff time.Duration) time.Duration {
	w.dropLog.add(0, w.logDropped) // drops not logged yet
	err := w.send(ctx, b)
	if err == nil {
		w.buf.release(b)
		if !w.reachable.Load() {
			w.log.Info("redis reachable again", slog.Int("queued", w.buf.len()))
		}
		w.reachable.Store(true)
		w.setHealth(nil)
		return 0
	}
	if ctx.Err() != nil {
		w.buf.requeue(b)
		return nextBackoff(backoff)
	}
	w.reachable.Store(false)
	// In a cluster the slot may have moved (a replica promoted in a
	// failover): read the slot map again before the next attempt.
	reloadClusterState(ctx, w.client)
	w.buf.signalRoom() // waiting publishers stop waiting and drop the oldest instead
	if n := w.buf.requeue(b); n > 0 {
		w.countDropped(n)
	}
	w.setHealth(err)
	backoff = nextBackoff(backoff)
	w.errLog.do(func(skipped uint64) {
		w.log.Warn("redis publish failed; keeping records and retrying",
			slog.String("error", err.Error()), slog.Int("queued", w.buf.len()),
			slog.Duration("retry_in", backoff), slog.Uint64("errors_not_logged", skipped))
	})
	return backoff
}

// nextBackoff doubles d within [backoffMin, backoffMax].
func nextBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return backoffMin
	}
	return min(2*d, backoffMax)
}

// probe checks Redis when nothing was published for a while, so Health
// tells the truth on an idle node too, and the log says when an idle node
// loses Redis and when it has it back (once each, not at every probe).
func (w *redisWriter) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := w.client.Ping(ctx).Err()
	if errors.Is(err, context.Canceled) {
		return // closing
	}
	// reachable changes here only when no send has said the same already.
	switch was := w.reachable.Load(); {
	case err != nil && was:
		w.log.Warn("redis unreachable; checking every second", slog.String("error", err.Error()))
	case err == nil && !was:
		w.log.Info("redis reachable again", slog.Int("queued", w.buf.len()))
	}
	w.reachable.Store(err == nil)
	w.setHealth(err)
}

// countDropped counts n records dropped from the buffer and logs it at most
// once a second.
func (w *redisWriter) countDropped(n int) {
	w.dropped.Add(float64(n))
	w.dropLog.add(uint64(n), w.logDropped)
}

func (w *redisWriter) logDropped(total uint64) {
	w.log.Warn("redis bus buffer full; dropped oldest records",
		slog.Uint64("dropped", total), slog.Int("buffer_bytes", w.buf.limit))
}

// send delivers the records of b in one transaction (see writeFlush): per
// channel one stream entry, one notification for the batch, in publish
// order per channel.
func (w *redisWriter) send(ctx context.Context, b *pendingBatch) error {
	if b.head >= len(b.recs) {
		return nil
	}
	clear(w.channelNo)
	w.blobs = w.blobs[:0]
	w.echoRecs = w.echoRecs[:0]
	// In a cluster each bucket has its own ID sequence: a record's
	// position counts the records of its bucket only.
	var bucketPos [clusterBuckets]int
	for i := b.head; i < len(b.recs); i++ {
		r := &b.recs[i]
		if r.channel == "" {
			continue // written by an earlier, partly failed attempt (see writeClusterFlush)
		}
		pos := i - b.head // the record's position in the flush
		c, ok := w.channelNo[r.channel]
		if !ok {
			c = len(w.blobs)
			w.channelNo[r.channel] = c
			if c < cap(w.blobs) {
				w.blobs = w.blobs[:c+1]
				w.blobs[c] = channelBlob{data: w.blobs[c].data[:0]}
			} else {
				w.blobs = append(w.blobs, channelBlob{})
			}
			w.blobs[c].channel = r.channel
			if w.keys.cluster {
				w.blobs[c].bucket = bucketOf(r.channel)
			}
		}
		bl := &w.blobs[c]
		if w.keys.cluster {
			pos = bucketPos[bl.bucket]
			bucketPos[bl.bucket]++
		}
		if !ok {
			bl.first = pos
		}
		gelf := b.data[r.start:r.end]
		bl.lastOff = pos - bl.first
		bl.data = appendBlobRecord(bl.data, bl.lastOff, gelf)
		bl.n++
		if w.echo != echoNone {
			w.echoRecs = append(w.echoRecs, echoRecord{gelf: gelf, blob: c, off: bl.lastOff})
		}
	}
	if len(w.blobs) == 0 {
		return nil // all written already
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	var skipped int
	var err error
	if w.keys.cluster {
		skipped, err = w.writeClusterFlush(ctx, b)
	} else {
		skipped, err = w.writeFlush(ctx, w.blobs, len(b.recs)-b.head, w.echoRecs)
	}
	clear(w.echoRecs) // drop the references into b.data
	for i := range w.blobs {
		if cap(w.blobs[i].data) > maxKeptBlob {
			w.blobs[i].data = nil // one huge flush does not pin its memory
		}
	}
	switch {
	case err == nil:
		if skipped > 0 {
			w.dropped.Add(float64(skipped))
			w.errLog.do(func(uint64) {
				w.log.Error("redis refused records (a key of another type?); dropped them",
					slog.Int("records", skipped))
			})
		}
		return nil
	case isPermanent(err):
		// Retrying would block every later record.
		n := len(b.recs) - b.head
		w.dropped.Add(float64(n))
		w.errLog.do(func(uint64) {
			w.log.Error("redis refused a batch; dropped it", slog.Int("records", n), slog.String("error", err.Error()))
		})
		return nil
	}
	return err
}

// writeClusterFlush writes the flush in w.blobs to a Redis Cluster: one
// transaction per bucket (its channels' keys and its ID sequence share a
// slot; its records take numbers of the bucket's sequence in publish order,
// as a standalone shard's do, see writeFlush), then the channels into the
// registry. Buckets are written one after the other; the first error stops
// the flush, and the batch b is tried again later without the buckets
// already written (their records are marked with an empty channel, which
// send skips), so no record is written twice.
func (w *redisWriter) writeClusterFlush(ctx context.Context, b *pendingBatch) (int, error) {
	skipped := 0
	var nowMS float64
	w.groupNo = slices.Grow(w.groupNo[:0], len(w.blobs))[:len(w.blobs)]
	for k := range clusterBuckets {
		w.group = w.group[:0]
		total := 0
		for i := range w.blobs {
			if w.blobs[i].bucket == k {
				w.groupNo[i] = len(w.group)
				w.group = append(w.group, w.blobs[i])
				total += w.blobs[i].n
			}
		}
		if len(w.group) == 0 {
			continue
		}
		w.groupEcho = w.groupEcho[:0]
		for _, e := range w.echoRecs {
			if w.blobs[e.blob].bucket == k {
				e.blob = w.groupNo[e.blob]
				w.groupEcho = append(w.groupEcho, e)
			}
		}
		n, err := w.writeFlush(ctx, w.group, total, w.groupEcho)
		clear(w.groupEcho) // drop the references into b.data
		if err != nil {
			// The buckets before k are written.
			w.group = w.group[:0]
			for i := range w.blobs {
				if w.blobs[i].bucket < k {
					w.group = append(w.group, w.blobs[i])
				}
			}
			w.markWritten(b, w.group)
			clear(w.group)
			return skipped, err
		}
		skipped += n
	}
	clear(w.group) // drop the references to the blobs' data
	nowMS = float64(time.Now().UnixMilli())
	p := w.client.Pipeline()
	w.renewing = w.renewing[:0]
	for i := range w.blobs {
		if w.registerDue(w.blobs[i].channel, uint64(nowMS)) {
			p.ZAdd(ctx, w.keys.registry(), redis.Z{Score: nowMS, Member: w.blobs[i].channel})
			w.renewing = append(w.renewing, w.blobs[i].channel)
		}
	}
	if p.Len() == 0 {
		return skipped, nil
	}
	if _, err := p.Exec(ctx); err != nil {
		return skipped, fmt.Errorf("channel registry: %w", err)
	}
	w.registeredAt(w.renewing, uint64(nowMS))
	return skipped, nil
}

// markWritten marks the records of b on the channels of written as
// written, so that a retry of b skips them.
func (w *redisWriter) markWritten(b *pendingBatch, written []channelBlob) {
	if len(written) == 0 {
		return
	}
	done := make(map[string]bool, len(written))
	for i := range written {
		done[written[i].channel] = true
	}
	for i := b.head; i < len(b.recs); i++ {
		if done[b.recs[i].channel] {
			b.recs[i].channel = ""
		}
	}
}

// maxKeptBlob bounds the blob buffer send keeps for the next batch.
const maxKeptBlob = 1 << 20

// isPermanent reports whether err is a Redis error reply that a retry will
// not cure. Replies that pass (loading, busy script, out of memory, a
// replica, cluster moves) are transient.
func isPermanent(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	for _, p := range []string{"LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN",
		"CLUSTERDOWN", "MOVED", "ASK", "NOSCRIPT", "NOAUTH", "WRONGPASS", "NOPERM"} {
		if redis.HasErrorPrefix(err, p) {
			return false
		}
	}
	return true
}

// rateLimited runs a log call at most once per logEvery, counting what it
// skipped in between.
type rateLimited struct {
	mu      sync.Mutex
	last    time.Time
	pending uint64
}

// do runs f now unless it ran less than logEvery ago; f gets how many calls
// were skipped since it last ran.
func (r *rateLimited) do(f func(skipped uint64)) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < logEvery {
		r.pending++
		r.mu.Unlock()
		return
	}
	skipped := r.pending
	r.last, r.pending = now, 0
	r.mu.Unlock()
	f(skipped)
}

// add accumulates n and runs f with the total at most once per logEvery.
func (r *rateLimited) add(n uint64, f func(total uint64)) {
	r.mu.Lock()
	r.pending += n
	now := time.Now()
	if r.pending == 0 || now.Sub(r.last) < logEvery {
		r.mu.Unlock()
		return
	}
	total := r.pending
	r.last, r.pending = now, 0
	r.mu.Unlock()
	f(total)
}

// fmtUnreachable is the Health error while Redis cannot be reached.
func fmtUnreachable(err error) error { return fmt.Errorf("redis unreachable: %w", err) }
