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
	URL string
	// Role is RoleAll (default), RoleIngest or RoleStream.
	Role string
	// History is the approximate length (MAXLEN ~) of each channel's stream.
	History int
	// BufferBytes bounds the records held while Redis is slow or away; the
	// oldest are dropped beyond it.
	BufferBytes int
	// ChannelPrefix starts every pub/sub channel and key name.
	ChannelPrefix string
	Logger        *slog.Logger
	Metrics       *metrics.Metrics
	// QueueBudget bounds the bytes queued for all subscribers of this node
	// together (see MemoryConfig.QueueBudget). Zero: no bound.
	QueueBudget int64
}

// redisKeys names the pub/sub channels and keys of one prefix.
type redisKeys struct{ prefix string }

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

// stream is the capped stream holding a channel's history.
func (k redisKeys) stream(channel string) string { return k.prefix + "logviewer:stream:" + channel }

// registry is the sorted set of channels scored by last publish time (ms).
func (k redisKeys) registry() string { return k.prefix + "logviewer:channels" }

// state is the hash of the ID sequence shared by all channels.
func (k redisKeys) state() string { return k.prefix + "logviewer:state" }

// Redis is the bus over Redis: ingest nodes PUBLISH each record and append it
// to a capped stream per channel; stream nodes hold one PSUBSCRIBE for all
// their clients, fan records out in process, and read history and fill
// pub/sub gaps from the streams. It implements Bus.
//
// Names in Redis, after ChannelPrefix (P):
//
//	P<channel>                   pub/sub channel (where omhiredis publishes too)
//	P*                           the one PSUBSCRIBE pattern of a stream node
//	Plogviewer:stream:<channel>  stream, MAXLEN ~ History, entries {d: GELF with _event_id}
//	Plogviewer:channels          sorted set: channel -> time of its latest record (ms)
//	Plogviewer:state             hash: ms, seq (the ID sequence), epoch (first ID of this Redis life)
//
// Event IDs are the stream entry IDs, drawn from one sequence for all
// channels (see publishScript). Records published by others (rsyslog) have
// no ID: they are streamed live only.
type Redis struct {
	role   string
	client *redis.Client
	keys   redisKeys
	log    *slog.Logger

	published prometheus.Counter
	buf       *pubBuffer
	writer    *redisWriter
	wake      chan struct{}
	fan       *fanout
	reader    *redisReader
	stats     *channelStats

	cancel     context.CancelFunc
	writerDone chan struct{}
	readerDone chan struct{}
	closing    chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once

	healthMu sync.Mutex
	pubErr   error // last publish attempt or probe
	subErr   error // pub/sub connection
}

// NewRedis starts a Redis bus. It fails only on a bad configuration (URL,
// role): Redis being down is not an error, the bus buffers and reconnects.
// ctx gives values only; the bus runs until Close.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
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
	// The bus retries itself, knowing which commands are safe to repeat.
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)

	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Redis{
		role:      cfg.Role,
		client:    client,
		keys:      redisKeys{prefix: cfg.ChannelPrefix},
		log:       cfg.Logger,
		published: cfg.Metrics.Published,
		fan:       newFanoutBudget(cfg.Metrics, cfg.QueueBudget),
		stats:     newChannelStats(),
		cancel:    cancel,
		closing:   make(chan struct{}),
	}
	if r.role != RoleStream {
		r.buf = newPubBuffer(cfg.BufferBytes, defaultBatchSize)
		r.wake = make(chan struct{}, 1)
		r.writer = &redisWriter{
			client:    client,
			keys:      r.keys,
			maxLen:    itoa(cfg.History),
			sha:       publishScriptSHA(),
			buf:       r.buf,
			wake:      r.wake,
			closing:   r.closing,
			linger:    defaultLinger,
			log:       r.log,
			dropped:   cfg.Metrics.Dropped.WithLabelValues(metrics.DropBusBuffer),
			dropLog:   &rateLimited{},
			errLog:    &rateLimited{},
			setHealth: r.setPubHealth,
			channelNo: make(map[string]int),
		}
		// Optimistic until the first probe or send says otherwise, so that
		// records arriving at start wait for room rather than being dropped.
		r.writer.reachable.Store(true)
		r.writerDone = make(chan struct{})
		go r.writer.run(ctx, r.writerDone)
	}
	if r.role != RoleIngest {
		// Degraded until the PSUBSCRIBE is in place: records published
		// before it would not reach this node live.
		r.subErr = errors.New("pub/sub not subscribed yet")
		r.reader = newRedisReader(r)
		r.readerDone = make(chan struct{})
		go r.reader.run(ctx, r.readerDone)
	}
	return r, nil
}

// Publish queues the record for Redis. While Redis is reachable but slower
// than the senders and the buffer (BufferBytes) is full, it waits for room,
// so that TCP senders are slowed down rather than lines lost. While Redis is
// unreachable it never waits: records stay in the buffer, the oldest dropped
// beyond its bound.
func (r *Redis) Publish(ctx context.Context, channel string, gelf []byte) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.buf == nil {
		return fmt.Errorf("publish to %q: the Redis bus has role %s", channel, r.role)
	}
	if !isJSONObject(gelf) {
		return fmt.Errorf("publish to %q: record is not a JSON object", channel)
	}
	if channel == "" {
		// PSUBSCRIBE "*" does not match "": no stream node would see it.
		return errors.New("publish: empty channel name")
	}
	gelf = trimLeftSpace(gelf)
	if isEmptyObjectBody(gelf[1:]) {
		gelf = []byte("{}") // the publish script tests for exactly this
	}
	dropped, wake := r.buf.pushWhenRoom(ctx, r.closing, r.writer.reachable.Load, channel, gelf)
	r.published.Inc()
	if dropped > 0 {
		r.writer.countDropped(dropped)
	}
	if wake {
		select {
		case r.wake <- struct{}{}:
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
// from the node's one pub/sub connection.
func (r *Redis) Subscribe(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if r.reader == nil {
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
	// the PSUBSCRIBE to be in place (not long: without Redis the history
	// read fails anyway).
	r.reader.waitActive(ctx, 2*time.Second)
	backfill, skip, err := r.history(ctx, pattern, opts)
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("subscribe to %q: %w", pattern, err)
	}
	sub.start(backfill, skip)
	return sub, nil
}

// Channels lists the channels of the registry (each published at least once
// by an ingest node) and those this node saw live (rsyslog publishes without
// registering), with what this node counted of them.
func (r *Redis) Channels(ctx context.Context) ([]ChannelInfo, error) {
	infos := r.stats.snapshot(time.Now())
	zs, err := r.client.ZRangeWithScores(ctx, r.keys.registry(), 0, -1).Result()
	if err != nil {
		if len(infos) > 0 {
			return infos, nil // what this node knows beats nothing
		}
		return nil, fmt.Errorf("channels: %w", fmtUnreachable(err))
	}
	index := make(map[string]int, len(infos))
	for i, ci := range infos {
		index[ci.Name] = i
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
	slices.SortFunc(infos, func(a, b ChannelInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return infos, nil
}

// Health returns nil while Redis answers, else "redis unreachable: ...".
func (r *Redis) Health(context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	r.healthMu.Lock()
	defer r.healthMu.Unlock()
	if r.pubErr != nil {
		return fmtUnreachable(r.pubErr)
	}
	if r.subErr != nil {
		return fmtUnreachable(r.subErr)
	}
	return nil
}

func (r *Redis) setPubHealth(err error) {
	r.healthMu.Lock()
	r.pubErr = err
	r.healthMu.Unlock()
}

func (r *Redis) setSubHealth(err error) {
	r.healthMu.Lock()
	r.subErr = err
	r.healthMu.Unlock()
}

// Close delivers the queued records (for a few seconds at most, and not
// while Redis is away), ends every subscription and closes the connections.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.closing)
		if r.writerDone != nil {
			select {
			case <-r.writerDone:
			case <-time.After(drainTimeout):
				r.log.Warn("redis bus closed with records still queued", slog.Int("queued", r.buf.len()))
			}
		}
		r.cancel()
		if r.reader != nil {
			r.reader.close()
		}
		if r.writerDone != nil {
			<-r.writerDone
		}
		if r.readerDone != nil {
			<-r.readerDone
		}
		r.fan.close()
		if err := r.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			r.log.Debug("redis close", slog.String("error", err.Error()))
		}
	})
	return nil
}
