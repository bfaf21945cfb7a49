package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/metrics"
)

// redisShard is one Redis of the bus: the channels hashed to it live there.
// An ingest node keeps a buffer and a writer per shard, a stream node a
// reader per shard, so a shard that is away holds up only its channels. A
// Redis Cluster is one shard, with a reader per master that changes with
// the cluster's layout.
type redisShard struct {
	src    *RedisSource // the stream side the shard's readers feed; nil on ingest's
	client redis.UniversalClient
	keys   redisKeys
	name   string // host:port, as /healthz and the log name the shard
	multi  bool   // one of several shards: errors name it
	log    *slog.Logger

	buf        *pubBuffer
	writer     *redisWriter
	wake       chan struct{}
	writerDone chan struct{}
	readerDone chan struct{} // closed when every reader has stopped

	healthMu  sync.Mutex
	pubErr    error          // last publish attempt or probe
	layoutErr error          // cluster: the last layout read failed (see clusterWatcher)
	readers   []*redisReader // the stream side's pub/sub connections (a cluster's change with its layout)
	found     chan struct{}  // closed once readers is complete (a cluster's first layout applied)
}

// startWriter starts the shard's writer; closing is closed by Close.
func (sh *redisShard) startWriter(ctx context.Context, cfg RedisConfig, closing chan struct{}) {
	sh.buf = newPubBuffer(cfg.BufferBytes, defaultBatchSize)
	sh.wake = make(chan struct{}, 1)
	echo := echoNone
	switch {
	case cfg.PublishRecords && cfg.Compat:
		echo = echoPlain
	case cfg.PublishRecords:
		echo = echoWithID
	}
	sh.writer = &redisWriter{
		client:    sh.client,
		keys:      sh.keys,
		history:   cfg.History,
		step:      max(cfg.History/8, 1),
		echo:      echo,
		buf:       sh.buf,
		wake:      sh.wake,
		closing:   closing,
		linger:    defaultLinger,
		maxLinger: defaultMaxLinger,
		log:       sh.log,
		dropped:   cfg.Metrics.Dropped.WithLabelValues(metrics.DropBusBuffer),
		dropLog:   &rateLimited{},
		errLog:    &rateLimited{},
		setHealth: sh.setPubHealth,
		channelNo: make(map[string]int),
	}
	// Optimistic until the first probe or send says otherwise, so that
	// records arriving at start wait for room rather than being dropped.
	sh.writer.reachable.Store(true)
	sh.writerDone = make(chan struct{})
	go sh.writer.run(ctx, sh.writerDone)
}

// startReader starts the shard's pub/sub reader.
func (sh *redisShard) startReader(ctx context.Context) {
	rd := newRedisReader(sh)
	sh.readers = []*redisReader{rd}
	sh.found = make(chan struct{})
	close(sh.found)
	sh.readerDone = make(chan struct{})
	go rd.run(ctx, sh.readerDone)
}

// waitActive waits until every reader's subscription is in place, ctx ends
// or d passes.
func (sh *redisShard) waitActive(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sh.found:
	case <-ctx.Done():
		return
	case <-t.C:
		return
	}
	for _, rd := range sh.snapshotReaders() {
		select {
		case <-rd.activeChan():
		case <-ctx.Done():
			return
		case <-t.C:
			return
		}
	}
}

// snapshotReaders returns the readers started so far.
func (sh *redisShard) snapshotReaders() []*redisReader {
	sh.healthMu.Lock()
	defer sh.healthMu.Unlock()
	return slices.Clone(sh.readers)
}

// health is nil while the shard answers, else why not, naming the shard.
func (sh *redisShard) health() error {
	sh.healthMu.Lock()
	defer sh.healthMu.Unlock()
	if sh.pubErr != nil {
		return sh.unreachable(sh.pubErr)
	}
	if sh.layoutErr != nil {
		return sh.unreachable(sh.layoutErr)
	}
	if sh.found != nil {
		select {
		case <-sh.found:
		default:
			return sh.unreachable(errors.New("cluster nodes not found yet"))
		}
	}
	for _, rd := range sh.readers {
		if err := rd.health(); err != nil {
			return sh.unreachable(err)
		}
	}
	return nil
}

// unreachable is the error of a shard that cannot be reached.
func (sh *redisShard) unreachable(err error) error {
	if sh.multi {
		return fmt.Errorf("redis shard %s unreachable: %w", sh.name, err)
	}
	return fmtUnreachable(err)
}

func (sh *redisShard) setPubHealth(err error) {
	sh.healthMu.Lock()
	sh.pubErr = err
	sh.healthMu.Unlock()
}

// close stops the shard's goroutines (the bus's context is cancelled
// already) and closes its connections.
func (sh *redisShard) close() {
	for _, rd := range sh.snapshotReaders() {
		rd.close()
	}
	if sh.writerDone != nil {
		<-sh.writerDone
	}
	if sh.readerDone != nil {
		<-sh.readerDone
	}
	if err := sh.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		sh.log.Debug("redis close", slog.String("error", err.Error()))
	}
}
