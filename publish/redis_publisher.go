package publish

import (
	"context"
	"errors"
	"fmt"
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
	if !isJSONObject(gelf) {
		return fmt.Errorf("publish to %q: record is not a JSON object", channel)
	}
	if channel == "" {
		// PSUBSCRIBE "*" does not match "": no stream node would see it.
		return errors.New("publish: empty channel name")
	}
	if strings.IndexByte(channel, '\n') >= 0 {
		return fmt.Errorf("publish to %q: newline in channel name", channel)
	}
	gelf = trimLeftSpace(gelf)
	if isEmptyObjectBody(gelf[1:]) {
		gelf = []byte("{}")
	}
	sh := p.shards[shardIndex(channel, len(p.shards))]
	dropped, wake := sh.buf.pushWhenRoom(ctx, p.closing, sh.writer.reachable.Load, channel, gelf)
	p.published.Inc()
	if dropped > 0 {
		sh.writer.countDropped(dropped)
	}
	if wake {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
	return nil
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
