package publish

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RedisSource is the stream side of the Redis bus: per shard (per master
// of a cluster) one pub/sub reader for all of the node's clients, the
// history read from the streams, and one fan-out. It never publishes.
type RedisSource struct {
	keys   redisKeys
	shards []*redisShard
	log    *slog.Logger
	fan    *fanout
	stats  *channelStats

	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
}

// NewRedisSource starts the readers of cfg's shards. It fails only on a
// bad configuration: Redis being down is not an error, the readers
// reconnect. ctx gives values only; it runs until Close.
func NewRedisSource(ctx context.Context, cfg RedisConfig) (*RedisSource, error) {
	cfg, opts, err := redisOptions(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &RedisSource{
		keys:   redisKeys{prefix: cfg.ChannelPrefix, cluster: cfg.Cluster},
		log:    cfg.Logger,
		fan:    newFanoutBudget(cfg.Metrics, cfg.QueueBudget),
		stats:  newChannelStats(),
		cancel: cancel,
	}
	shards, cluster := newShards(cfg, opts)
	s.shards = shards
	for _, sh := range shards {
		sh.src = s
		if cluster != nil {
			sh.startClusterReaders(ctx, opts[0], urlsAddrs(opts))
		} else {
			sh.startReader(ctx)
		}
	}
	return s, nil
}

// shardOf returns the shard a channel lives on (see shardIndex).
func (s *RedisSource) shardOf(channel string) *redisShard {
	return s.shards[shardIndex(channel, len(s.shards))]
}

// Subscribe starts a subscription to the channels matching pattern: history
// first when opts asks for it (read from the streams), then live records
// from the node's pub/sub connections.
func (s *RedisSource) Subscribe(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	// Where the subscription starts in each ID sequence, read before it
	// is in place: later records reach it live.
	tokens := s.spansUnits(pattern)
	var floors []position
	if tokens {
		floors = s.startFloors()
	}
	if opts.Since == "" && opts.Tail <= 0 {
		sub, err := s.fan.subscribe(pattern, nil, opts)
		if err != nil {
			return nil, err
		}
		if tokens {
			return newCursorSub(s, sub, nil, nil, floors), nil
		}
		return sub, nil
	}
	sub, err := s.fan.subscribePending(pattern, opts)
	if err != nil {
		return nil, err
	}
	// Records published after the history read must come live: wait for
	// the subscriptions to be in place (not long: without Redis the
	// history read fails anyway).
	for _, sh := range s.shards {
		sh.waitActive(ctx, 2*time.Second)
	}
	backfill, skip, rp, err := s.history(ctx, pattern, opts)
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("subscribe to %q: %w", pattern, err)
	}
	// The records read for this client are held against the budget of
	// bytes queued for all clients until it takes them, as the memory
	// bus holds its backfills.
	backfill, held := s.fan.holdOwnedBackfill(backfill)
	var out Subscription = sub
	if tokens {
		out = newCursorSub(s, sub, rp, backfill, floors)
	}
	sub.startHeld(backfill, skip, held)
	return out, nil
}

// Channels lists the channels of the registries (each published at least
// once by an ingest node) and those this node saw live (rsyslog publishes
// without registering), with what this node counted of them.
func (s *RedisSource) Channels(ctx context.Context) ([]ChannelInfo, error) {
	return registryChannels(ctx, s.shards, s.stats)
}

// registryChannels lists the channels of the shards' registries, joined
// with those stats counted (stats may be nil).
func registryChannels(ctx context.Context, shards []*redisShard, stats *channelStats) ([]ChannelInfo, error) {
	var infos []ChannelInfo
	if stats != nil {
		infos = stats.snapshot(time.Now())
	}
	index := make(map[string]int, len(infos))
	for i, ci := range infos {
		index[ci.Name] = i
	}
	var firstErr error
	for _, sh := range shards {
		zs, err := sh.client.ZRangeWithScores(ctx, sh.keys.registry(), 0, -1).Result()
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

// Health returns nil while every shard's subscription is in place, else
// which are not and why.
func (s *RedisSource) Health(context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return shardsHealth(s.shards)
}

// Close ends every subscription and closes the connections.
func (s *RedisSource) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		for _, sh := range s.shards {
			sh.close()
		}
		s.fan.close()
	})
	return nil
}
