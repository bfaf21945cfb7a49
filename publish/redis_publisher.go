package publish

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// RedisPublisher is ingest's side of the Redis bus: per shard a bounded
// buffer and a writer that flushes it in batches (see writeFlush). It only
// publishes; RedisSource reads.
type RedisPublisher struct {
	shards    []*redisShard
	published prometheus.Counter

	cancel    context.CancelFunc
	closing   chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
}

// NewRedisPublisher starts the writers of cfg's shards. It fails only on a
// bad configuration: Redis being down is not an error, the publisher
// buffers and retries. ctx gives values only; it runs until Close.
func NewRedisPublisher(ctx context.Context, cfg RedisConfig) (*RedisPublisher, error) {
	cfg, opts, err := redisOptions(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &RedisPublisher{published: cfg.Metrics.Published, cancel: cancel, closing: make(chan struct{})}
	p.shards, _ = newShards(cfg, opts)
	for _, sh := range p.shards {
		sh.startWriter(ctx, cfg, p.closing)
	}
	return p, nil
}

// Publish queues the record for its shard. While that Redis is reachable
// but slower than the senders and the buffer (BufferBytes) is full, it waits
// for room, so that TCP senders are slowed down rather than lines lost.
// While it is unreachable Publish never waits: records stay in the buffer,
// the oldest dropped beyond its bound.
func (p *RedisPublisher) Publish(ctx context.Context, channel string, gelf []byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	gelf, err := checkRecord(channel, gelf)
	if err != nil {
		return err
	}
	sh := p.shards[shardIndex(channel, len(p.shards))]
	dropped, wake := sh.buf.pushWhenRoom(ctx, p.closing, sh.writer.reachable.Load, channel, gelf)
	p.published.Inc()
	sh.pushed(dropped, wake)
	return nil
}

// PublishBatch is Publish for each of records, (channel, GELF object)
// pairs, in order; ingest hands over what one read of a connection
// brought. A run of records for one shard takes that shard's buffer lock
// once and wakes its writer once. A record Publish would refuse is left
// out and reported in the returned error; the others are published.
func (p *RedisPublisher) PublishBatch(ctx context.Context, records iter.Seq2[string, []byte]) error {
	if p.closed.Load() {
		return ErrClosed
	}
	var (
		errs          []error
		published     int
		sh            *redisShard // whose buffer is locked, nil for none
		next          *redisShard // the shard of channel last
		last          string
		dropped, wake = 0, false
	)
	for channel, gelf := range records {
		gelf, err := checkRecord(channel, gelf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if channel != last { // runs of one channel: hash it once
			last, next = channel, p.shards[shardIndex(channel, len(p.shards))]
		}
		if next != sh {
			if sh != nil {
				sh.buf.mu.Unlock()
				sh.pushed(dropped, wake)
			}
			sh, dropped, wake = next, 0, false
			sh.buf.mu.Lock()
		}
		d, w := sh.buf.pushWhenRoomLocked(ctx, p.closing, sh.writer.reachable.Load, channel, gelf)
		dropped, wake = dropped+d, wake || w
		published++
	}
	if sh != nil {
		sh.buf.mu.Unlock()
		sh.pushed(dropped, wake)
	}
	if published > 0 {
		p.published.Add(float64(published))
	}
	return errors.Join(errs...)
}

// checkRecord returns gelf as the buffer takes it (no white space before
// it, "{}" for an empty object), or why channel and gelf are refused.
func checkRecord(channel string, gelf []byte) ([]byte, error) {
	if !isJSONObject(gelf) {
		return nil, fmt.Errorf("publish to %q: record is not a JSON object", channel)
	}
	if channel == "" {
		// PSUBSCRIBE "*" does not match "": no stream node would see it.
		return nil, errors.New("publish: empty channel name")
	}
	if strings.IndexByte(channel, '\n') >= 0 {
		return nil, fmt.Errorf("publish to %q: newline in channel name", channel)
	}
	gelf = trimLeftSpace(gelf)
	if isEmptyObjectBody(gelf[1:]) {
		gelf = []byte("{}")
	}
	return gelf, nil
}

// pushed counts what a push into the shard's buffer dropped and wakes the
// writer when the push said so.
func (sh *redisShard) pushed(dropped int, wake bool) {
	if dropped > 0 {
		sh.writer.countDropped(dropped)
	}
	if wake {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
}

// trimLeftSpace drops the white space before a JSON object's '{'.
func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// Health returns nil while every shard takes records, else which do not
// and why.
func (p *RedisPublisher) Health(context.Context) error {
	if p.closed.Load() {
		return ErrClosed
	}
	return shardsHealth(p.shards)
}

// Close is Shutdown with drainTimeout to deliver what is queued.
func (p *RedisPublisher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown delivers the queued records until ctx ends (and not while
// Redis is away), then closes the connections. It returns once the writers
// have stopped: soon after ctx ends, however many records were queued.
func (p *RedisPublisher) Shutdown(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		close(p.closing)
		for _, sh := range p.shards {
			select {
			case <-sh.writerDone:
			case <-ctx.Done():
				sh.log.Warn("redis bus closed with records still queued", slog.Int("queued", sh.buf.len()))
			}
		}
		p.cancel()
		for _, sh := range p.shards {
			sh.close()
		}
	})
	return nil
}

// shardsHealth joins the errors of the shards that do not answer.
func shardsHealth(shards []*redisShard) error {
	var errs []error
	for _, sh := range shards {
		if err := sh.health(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
