package publish

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"

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
	// channel's keys carry its bucket's hash tag (see clusterBuckets), its
	// notifications go to
	// the shard channel of its slot (SPUBLISH), and stream nodes SSUBSCRIBE
	// on every master, following the cluster's layout through failovers
	// and reshardings (see clusterWatcher).
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
// Cluster every key of a channel carries its bucket's hash tag (see
// clusterBuckets), so the keys of a bucket's channels and its ID sequence
// share a slot and a flush's transaction for the bucket crosses none.
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

// channelKey is the key of a channel's kind ("stream", "meta", ...): in a
// cluster "logviewer:<kind>:{<bucket tag>}<channel>".
func (k redisKeys) channelKey(kind, channel string) string {
	if k.cluster {
		return k.prefix + "logviewer:" + kind + ":{" + bucketTags[bucketOf(channel)] + "}" + channel
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
// of a standalone Redis, by those of the channel's bucket in a cluster.
func (k redisKeys) state(channel string) string {
	if k.cluster {
		return k.bucketState(bucketOf(channel))
	}
	return k.prefix + "logviewer:state"
}

// bucketState is the hash of the ID sequence of a cluster's bucket.
func (k redisKeys) bucketState(bucket int) string {
	return k.prefix + "logviewer:state:{" + bucketTags[bucket] + "}"
}

// notify is the pub/sub channel of a channel's batch notifications: one
// for a standalone Redis; in a cluster the shard channel of the slot of the
// channel's bucket (see slotTags).
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

// Redis is the bus over Redis, its two sides combined by role: ingest's
// RedisPublisher (role ingest or all) and the stream side's RedisSource
// (role stream or all). Ingest nodes write records in batches, per flush
// one stream entry per channel and one notification per shard; stream nodes
// hold one subscription per shard for all their clients, fan records out in
// process, and read history and fill pub/sub gaps from the streams. It
// implements Bus.
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
// In a Redis Cluster the keys of a channel carry its bucket's hash tag T
// (see clusterBuckets): Plogviewer:stream:{T}<channel>,
// Plogviewer:meta:{T}<channel>, and the bucket's Plogviewer:state:{T}; the
// notifications go to the shard channel of T's slot (see notifySlot).
//
// Event IDs derive from the stream entry IDs, drawn from one sequence per
// shard, or per bucket of a cluster (see writeFlush and redis_batch.go). Records published by others
// without an ID (the proof of concept's rsyslog) are streamed live only.
type Redis struct {
	role string
	pub  *RedisPublisher // nil for role stream
	src  *RedisSource    // nil for role ingest
}

// NewRedis starts a Redis bus of cfg.Role. It fails only on a bad
// configuration (URL, role): Redis being down is not an error, the bus
// buffers and reconnects. ctx gives values only; the bus runs until Close.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	switch cfg.Role {
	case "":
		cfg.Role = RoleAll
	case RoleAll, RoleIngest, RoleStream:
	default:
		return nil, fmt.Errorf("redis bus role %q: want %s, %s or %s", cfg.Role, RoleAll, RoleIngest, RoleStream)
	}
	r := &Redis{role: cfg.Role}
	var err error
	if cfg.Role != RoleStream {
		if r.pub, err = NewRedisPublisher(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Role != RoleIngest {
		if r.src, err = NewRedisSource(ctx, cfg); err != nil {
			if r.pub != nil {
				r.pub.Close()
			}
			return nil, err
		}
	}
	return r, nil
}

// redisOptions applies the defaults to cfg and parses its URLs.
func redisOptions(cfg RedisConfig) (RedisConfig, []*redis.Options, error) {
	urls := splitURLs(cfg.URL)
	if len(urls) == 0 {
		return cfg, nil, errors.New("redis url: empty")
	}
	opts := make([]*redis.Options, len(urls))
	for i, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			return cfg, nil, fmt.Errorf("redis url: %w", err)
		}
		// The bus retries itself, knowing which commands are safe to repeat.
		opt.MaxRetries = -1
		opt.DialerRetries = 1
		opt.ContextTimeoutEnabled = true
		opts[i] = opt
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
	return cfg, opts, nil
}

// newShards makes one shard per Redis of opts (a standalone Redis each),
// or one for the whole cluster; it also returns the cluster client.
func newShards(cfg RedisConfig, opts []*redis.Options) ([]*redisShard, *redis.ClusterClient) {
	keys := redisKeys{prefix: cfg.ChannelPrefix, cluster: cfg.Cluster}
	if cfg.Cluster {
		cluster := newClusterClient(opts)
		return []*redisShard{{client: cluster, keys: keys, name: "cluster " + strings.Join(urlsAddrs(opts), ","), log: cfg.Logger}}, cluster
	}
	shards := make([]*redisShard, len(opts))
	for i, opt := range opts {
		sh := &redisShard{client: redis.NewClient(opt), keys: keys, name: opt.Addr, log: cfg.Logger, multi: len(opts) > 1}
		if sh.multi {
			sh.log = cfg.Logger.With(slog.String("shard", sh.name))
		}
		shards[i] = sh
	}
	return shards, nil
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

// shardIndex returns the shard of n a channel lives on: FNV-1a of its name
// modulo n, the same on every node given the same URL list.
func shardIndex(channel string, n int) int {
	if n == 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// Publish hands the record to the publisher (see RedisPublisher.Publish).
func (r *Redis) Publish(ctx context.Context, channel string, gelf []byte) error {
	if r.pub == nil {
		if r.src.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("publish to %q: the Redis bus has role %s", channel, r.role)
	}
	return r.pub.Publish(ctx, channel, gelf)
}

// PublishBatch hands records to the publisher (see
// RedisPublisher.PublishBatch); a stream-only bus refuses them.
func (r *Redis) PublishBatch(ctx context.Context, records iter.Seq2[string, []byte]) error {
	if r.pub == nil {
		if r.src.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("publish: the Redis bus has role %s", r.role)
	}
	return r.pub.PublishBatch(ctx, records)
}

// Subscribe starts a subscription on the source (see RedisSource.Subscribe).
func (r *Redis) Subscribe(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error) {
	if r.src == nil {
		if r.pub.closed.Load() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("subscribe to %q: the Redis bus has role %s", pattern, r.role)
	}
	return r.src.Subscribe(ctx, pattern, opts)
}

// Channels lists the channels: the source's, or on an ingest node the
// registries' (see RedisSource.Channels).
func (r *Redis) Channels(ctx context.Context) ([]ChannelInfo, error) {
	if r.src == nil {
		return registryChannels(ctx, r.pub.shards, nil)
	}
	return r.src.Channels(ctx)
}

// Health returns nil while every shard answers on both sides, else which
// do not and why.
func (r *Redis) Health(ctx context.Context) error {
	var errs []error
	if r.pub != nil {
		errs = append(errs, r.pub.Health(ctx))
	}
	if r.src != nil {
		errs = append(errs, r.src.Health(ctx))
	}
	return errors.Join(errs...)
}

// Close is Shutdown with drainTimeout to deliver what is queued.
func (r *Redis) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return r.Shutdown(ctx)
}

// Shutdown delivers the queued records until ctx ends, then ends every
// subscription and closes the connections.
func (r *Redis) Shutdown(ctx context.Context) error {
	if r.pub != nil {
		r.pub.Shutdown(ctx)
	}
	if r.src != nil {
		r.src.Close()
	}
	return nil
}
