package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/metrics"
)

// Redis bus roles.
const (
	RoleAll    = "all"    // publish and subscribe
	RoleIngest = "ingest" // publish only
	RoleStream = "stream" // subscribe and list channels only
)

// Defaults of RedisConfig.
const (
	DefaultRedisHistory     = 10000    // stream entries kept per channel
	DefaultRedisBufferBytes = 64 << 20 // records kept while Redis is away
)

// RedisConfig configures a Redis bus.
type RedisConfig struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS.
	// Several URLs, comma-separated, are independent shards: each channel
	// lives on one of them, chosen by a stable hash of its name.
	URL string
	// Role is RoleAll (default), RoleIngest or RoleStream.
	Role string
	// History is the number of records kept per channel (a little more: see
	// addEntry).
	History int
	// BufferBytes bounds the records held while Redis is slow or away, per
	// shard; the oldest are dropped beyond it.
	BufferBytes int
	// ChannelPrefix starts every pub/sub channel and key name.
	ChannelPrefix string
	// PublishRecords also PUBLISHes each record's GELF on its channel, one
	// message per record, as the proof of concept's rsyslog did.
	PublishRecords bool
	// Cluster makes the URLs seed nodes of one Redis Cluster: each
	// channel's keys carry its name as hash tag, its notifications go to
	// the shard channel of its slot (SPUBLISH), and stream nodes SSUBSCRIBE
	// on every master.
	Cluster bool
	// Compat makes those messages exactly the GELF ingest made (with
	// --gelf-compat, the template's five fields); else "_event_id" leads.
	Compat  bool
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// QueueBudget bounds the bytes queued for all subscribers of this node
	// together (see MemoryConfig.QueueBudget). Zero: no bound.
	QueueBudget int64
}

// redisKeys names the pub/sub channels and keys of one prefix. In a Redis
// Cluster every key of a channel carries the channel as its hash tag, so a
// channel's keys share a slot and its transaction crosses none.
type redisKeys struct {
	prefix  string
	cluster bool
}

// pubsub is the channel records are published on: the same name rsyslog's
// omhiredis publishes to, so both feed the same stream nodes.
func (k redisKeys) pubsub(channel string) string { return k.prefix + channel }

// pattern is the one PSUBSCRIBE pattern of a stream node: the prefix, its
// glob characters escaped, then "*".
func (k redisKeys) pattern() string {
	b := make([]byte, 0, len(k.prefix)+2)
	for i := 0; i < len(k.prefix); i++ {
		switch c := k.prefix[i]; c {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '*'))
}

// channelKey is the key of a channel's kind ("stream", "meta", ...).
func (k redisKeys) channelKey(kind, channel string) string {
	if k.cluster {
		return k.prefix + "logviewer:" + kind + ":{" + channel + "}"
	}
	return k.prefix + "logviewer:" + kind + ":" + channel
}

// stream is the stream holding a channel's history.
func (k redisKeys) stream(channel string) string { return k.channelKey("stream", channel) }

// meta is the hash of a channel's stream: n, the records ever written to
// it, last, the ID of the last one, and marks, where to trim (see
// addEntry).
func (k redisKeys) meta(channel string) string { return k.channelKey("meta", channel) }

// state is the hash of the ID sequence of a channel: shared by all channels
// of a standalone Redis, the channel's own in a cluster.
func (k redisKeys) state(channel string) string {
	if k.cluster {
		return k.channelKey("state", channel)
	}
	return k.prefix + "logviewer:state"
}

// notify is the pub/sub channel of a channel's batch notifications: one
// for a standalone Redis; in a cluster the shard channel of the slot of the
// channel's keys (see slotTags).
func (k redisKeys) notify(channel string) string {
	if k.cluster {
		return k.notifySlot(keySlot(k.stream(channel)))
	}
	return k.prefix + BatchChannel
}

// notifySlot is the shard channel of the batch notifications of a slot.
func (k redisKeys) notifySlot(slot int) string {
	return k.prefix + BatchChannel + ":{" + slotTags()[slot] + "}"
}

// isNotify reports whether a pub/sub channel carries batch notifications.
func (k redisKeys) isNotify(pubChannel string) bool {
	name := k.prefix + BatchChannel
	if k.cluster {
		return len(pubChannel) > len(name) && pubChannel[:len(name)] == name && pubChannel[len(name)] == ':'
	}
	return pubChannel == name
}

// registry is the sorted set of channels scored by last publish time (ms).
func (k redisKeys) registry() string { return k.prefix + "logviewer:channels" }

// Redis is the bus over Redis: ingest nodes write records in batches, per
// flush one stream entry per channel and one notification per shard; stream
// nodes hold one PSUBSCRIBE per shard for all their clients, fan records
// out in process, and read history and fill pub/sub gaps from the streams.
// It implements Bus.
//
// Names in Redis, after ChannelPrefix (P), on the channel's shard:
//
//	P<channel>                   pub/sub channel (omhiredis publishes there; with PublishRecords we do too)
//	P*                           the one PSUBSCRIBE pattern of a stream node
//	Plogviewer:batch             pub/sub channel of the batch notifications
//	Plogviewer:stream:<channel>  stream, entries {n, b: a batch of records} (rsyslog's: {d: one record})
//	Plogviewer:meta:<channel>    hash: n (records written to the stream), last (the last one's ID), marks (trim marks)
//	Plogviewer:channels          sorted set: channel -> time of its latest record (ms)
//	Plogviewer:state             hash: ms, seq (the ID sequence), epoch (first ID of this Redis life)
//
// Event IDs derive from the stream entry IDs, drawn from one sequence per
// shard (see writeFlush and redis_batch.go). Records published by others
// without an ID (the proof of concept's rsyslog) are streamed live only.
type Redis struct {
	role   string
	shards []*redisShard
	keys   redisKeys
	log    *slog.Logger

	published prometheus.Counter
	fan       *fanout
	stats     *channelStats

	cancel    context.CancelFunc
	closing   chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
}

// NewRedis starts a Redis bus. It fails only on a bad configuration (URL,
// role): Redis being down is not an error, the bus buffers and reconnects.
// ctx gives values only; the bus runs until Close.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	urls := splitURLs(cfg.URL)
	if len(urls) == 0 {
		return nil, errors.New("redis url: empty")
	}
	opts := make([]*redis.Options, len(urls))
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		// The bus retries itself, knowing which commands are safe to repeat.
		opt.MaxRetries = -1
		opt.DialerRetries = 1
		opt.ContextTimeoutEnabled = true
		opts[i] = opt
	}
	switch cfg.Role {
	case "":
		cfg.Role = RoleAll
	case RoleAll, RoleIngest, RoleStream:
	default:
		return nil, fmt.Errorf("redis bus role %q: want %s, %s or %s", cfg.Role, RoleAll, RoleIngest, RoleStream)
	}
	if cfg.History <= 0 {
		cfg.History = DefaultRedisHistory
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = DefaultRedisBufferBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(prometheus.NewRegistry())
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Redis{
		role:      cfg.Role,
		keys:      redisKeys{prefix: cfg.ChannelPrefix},
		log:       cfg.Logger,
		published: cfg.Metrics.Published,
		fan:       newFanoutBudget(cfg.Metrics, cfg.QueueBudget),
		stats:     newChannelStats(),
		cancel:    cancel,
		closing:   make(chan struct{}),
	}
	if cfg.Cluster {
		r.keys.cluster = true
		cluster := newClusterClient(opts)
		sh := &redisShard{r: r, client: cluster, name: "cluster " + strings.Join(urlsAddrs(opts), ","), log: r.log}
		r.shards = append(r.shards, sh)
		if r.role != RoleStream {
			sh.startWriter(ctx, cfg)
		}
		if r.role != RoleIngest {
			sh.startClusterReaders(ctx, cluster, opts[0])
		}
		return r, nil
	}
	for _, opt := range opts {
		sh := &redisShard{r: r, client: redis.NewClient(opt), name: opt.Addr}
		if len(opts) > 1 {
			sh.log = r.log.With(slog.String("shard", sh.name))
		} else {
			sh.log = r.log
		}
		r.shards = append(r.shards, sh)
		if r.role != RoleStream {
			sh.startWriter(ctx, cfg)
		}
		if r.role != RoleIngest {
			sh.startReader(ctx)
		}
	}
	return r, nil
}

// urlsAddrs returns the host:port of each of opts.
func urlsAddrs(opts []*redis.Options) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.Addr
	}
	return out
}

// splitURLs splits a comma-separated list of URLs, dropping empty items.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// shardOf returns the shard a channel lives on: FNV-1a of its name modulo
// the number of shards, the same on every node given the same URL list.
func (r *Redis) shardOf(channel string) *redisShard {
	if len(r.shards) == 1 {
		return r.shards[0]
	}
	h := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= 16777619
	}
	return r.shards[h%uint32(len(r.shards))]
}

// Publish queues the record for its shard. While that Redis is reachable
// but slower than the senders and the buffer (BufferBytes) is full, it waits
// for room, so that TCP senders are slowed down rather than lines lost.
// While it is unreachable Publish never waits: records stay in the buffer,
// the oldest dropped beyond its bound.
func (r *Redis) Publish(ctx context.Context, channel string, gelf []byte) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.role == RoleStream {
		return fmt.Errorf("publish to %q: the Redis bus has role %s", channel, r.role)
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
		gelf = []byte("{}") // the publish script tests for exactly this
	}
	sh := r.shardOf(channel)
	dropped, wake := sh.buf.pushWhenRoom(ctx, r.closing, sh.writer.reachable.Load, channel, gelf)
	r.published.Inc()
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

// trimLeftSpace drops the white space before a JSON object's '{', which the
// publish script expects first.
func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// Subscribe starts a subscription to the channels matching pattern: history
// first when opts asks for it (read from the streams), then live records
// from the node's pub/sub connections.
func (r *Redis) Subscribe(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if r.role == RoleIngest {
		return nil, fmt.Errorf("subscribe to %q: the Redis bus has role %s", pattern, r.role)
	}
	if opts.Since == "" && opts.Tail <= 0 {
		sub, err := r.fan.subscribe(pattern, nil, opts)
		if err != nil {
			return nil, err
		}
		return sub, nil
	}
	sub, err := r.fan.subscribePending(pattern, opts)
	if err != nil {
		return nil, err
	}
	// Records published after the history read must come live: wait for
	// the PSUBSCRIBEs to be in place (not long: without Redis the history
	// read fails anyway).
	for _, sh := range r.shards {
		sh.waitActive(ctx, 2*time.Second)
	}
	backfill, skip, err := r.history(ctx, pattern, opts)
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("subscribe to %q: %w", pattern, err)
	}
	sub.start(backfill, skip)
	return sub, nil
}

// Channels lists the channels of the registries (each published at least
// once by an ingest node) and those this node saw live (rsyslog publishes
// without registering), with what this node counted of them.
func (r *Redis) Channels(ctx context.Context) ([]ChannelInfo, error) {
	infos := r.stats.snapshot(time.Now())
	index := make(map[string]int, len(infos))
	for i, ci := range infos {
		index[ci.Name] = i
	}
	var firstErr error
	for _, sh := range r.shards {
		zs, err := sh.client.ZRangeWithScores(ctx, r.keys.registry(), 0, -1).Result()
		if err != nil {
			if firstErr == nil {
				firstErr = sh.unreachable(err)
			}
			continue
		}
		for _, z := range zs {
			name, ok := z.Member.(string)
			if !ok {
				continue
			}
			seen := time.UnixMilli(int64(z.Score)).UTC()
			if i, ok := index[name]; ok {
				if seen.After(infos[i].LastSeen) {
					infos[i].LastSeen = seen
				}
				continue
			}
			index[name] = len(infos)
			infos = append(infos, ChannelInfo{Name: name, LastSeen: seen})
		}
	}
	if firstErr != nil && len(infos) == 0 {
		return nil, fmt.Errorf("channels: %w", firstErr)
	}
	slices.SortFunc(infos, func(a, b ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// Health returns nil while every shard answers, else which shards do not
// and why.
func (r *Redis) Health(context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	var errs []error
	for _, sh := range r.shards {
		if err := sh.health(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close is Shutdown with drainTimeout to deliver what is queued.
func (r *Redis) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return r.Shutdown(ctx)
}

// Shutdown delivers the queued records until ctx ends (and not while
// Redis is away), then ends every subscription and closes the connections.
// It returns once all of the bus's goroutines have stopped: soon after ctx
// ends, however many records were still queued.
func (r *Redis) Shutdown(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.closing)
		for _, sh := range r.shards {
			if sh.writerDone == nil {
				continue
			}
			select {
			case <-sh.writerDone:
			case <-ctx.Done():
				sh.log.Warn("redis bus closed with records still queued", slog.Int("queued", sh.buf.len()))
			}
		}
		r.cancel()
		for _, sh := range r.shards {
			sh.close()
		}
		r.fan.close()
	})
	return nil
}
