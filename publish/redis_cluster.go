package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// newClusterClient connects to a Redis Cluster through its seed nodes,
// with the credentials and TLS of the first URL.
func newClusterClient(opts []*redis.Options) *redis.ClusterClient {
	first := opts[0]
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:     urlsAddrs(opts),
		Username:  first.Username,
		Password:  first.Password,
		TLSConfig: first.TLSConfig,
		// The bus retries itself, knowing which commands are safe to
		// repeat; MOVED and ASK are still followed.
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
		// A failover moves slots without a MOVED to the clients of the
		// failed master (its connections are refused): the bus asks for a
		// reload after a failure (reloadClusterState), and this bounds
		// how stale the slot map gets otherwise.
		ClusterStateReloadInterval: 5 * time.Second,
	})
}

// reloadClusterState makes a cluster client read the slot map again (in
// the background): after a failed command, whose slot may have moved to a
// replica promoted in a failover. Other clients are left alone.
func reloadClusterState(ctx context.Context, c redis.UniversalClient) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}

// startClusterReaders finds the masters of the cluster and starts one
// reader per master, subscribed (SSUBSCRIBE) to the batch shard channels of
// the slots it serves: a stream node gets every channel's records, each
// from the master that holds the channel, whatever channels come and go.
// Until the masters are found the shard reports itself degraded. A change
// of the cluster's layout (failover, resharding) after that is not
// followed.
func (sh *redisShard) startClusterReaders(ctx context.Context, cluster *redis.ClusterClient, seed *redis.Options) {
	sh.found = make(chan struct{})
	sh.readerDone = make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		defer func() {
			wg.Wait()
			close(sh.readerDone)
		}()
		var backoff time.Duration
		for {
			masters, err := clusterMasters(ctx, cluster)
			if err == nil {
				sh.healthMu.Lock()
				for addr, slots := range masters {
					rd := sh.newClusterReader(addr, slots, seed)
					sh.readers = append(sh.readers, rd)
					wg.Add(1)
					done := make(chan struct{})
					go rd.run(ctx, done)
					go func() { <-done; wg.Done() }()
				}
				close(sh.found)
				sh.healthMu.Unlock()
				return
			}
			sh.setPubHealthIfNil(err)
			backoff = nextBackoff(backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}()
}

// setPubHealthIfNil records err as the shard's state unless the writer
// said something already (or the shard has no writer).
func (sh *redisShard) setPubHealthIfNil(err error) {
	sh.healthMu.Lock()
	defer sh.healthMu.Unlock()
	if sh.writer == nil && sh.pubErr == nil {
		sh.pubErr = fmt.Errorf("find cluster masters: %w", err)
	}
}

// clusterMasters returns each master's address with the slots it serves.
func clusterMasters(ctx context.Context, c *redis.ClusterClient) (map[string][]bool, error) {
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster slots: %w", err)
	}
	out := make(map[string][]bool)
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		addr := s.Nodes[0].Addr
		if out[addr] == nil {
			out[addr] = make([]bool, clusterSlots)
		}
		for slot := s.Start; slot <= s.End && slot < clusterSlots; slot++ {
			out[addr][slot] = true
			covered++
		}
	}
	if covered < clusterSlots {
		return nil, errors.New("cluster slots: not every slot is served")
	}
	return out, nil
}

// newClusterReader returns the reader of one master serving slots.
func (sh *redisShard) newClusterReader(addr string, slots []bool, seed *redis.Options) *redisReader {
	keys := sh.keys
	var channels []string
	for slot, mine := range slots {
		if mine {
			channels = append(channels, keys.notifySlot(slot))
		}
	}
	client := redis.NewClient(&redis.Options{
		Addr:                  addr,
		Username:              seed.Username,
		Password:              seed.Password,
		TLSConfig:             seed.TLSConfig,
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	rd := newRedisReader(sh)
	rd.client = client
	rd.pattern = ""
	rd.channels = channels
	rd.owns = func(ch string) bool { return slots[keySlot(keys.stream(ch))] }
	rd.ownClient = true
	return rd
}
