package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestRedisClusterFailover: a cluster of three masters with a replica
// each, records flowing on two channels of every master; one master is
// killed and its replica promoted (cluster-node-timeout 1s). Every record
// published before, during and after the failover reaches a stream node's
// subscriber exactly once and in order per channel: the ingest node holds
// the failed master's records in its buffer until the replica takes over,
// and the stream node replaces that master's reader by one on the new
// master, which goes on from the last record delivered. Both nodes report
// the outage on Health meanwhile, and are healthy again after it.
func TestRedisClusterFailover(t *testing.T) {
	c := testsupport.StartRedisClusterWith(t, testsupport.RedisClusterOptions{
		Masters: 3, Replicas: 1, NodeTimeout: time.Second})
	ingest, stream := clusterBuses(t, c.URLs())
	slotOf := clusterSlotOf
	chans := clusterChannels(t, 2)
	var all []string
	for _, list := range chans {
		all = append(all, list...)
	}
	victimSlot := slotOf(chans[1][0])
	victim := c.MasterOf(victimSlot)
	if victim == nil {
		t.Fatalf("no master of slot %d", victimSlot)
	}
	sub := subscribe(t, stream, "*", SubscribeOptions{})

	n := 0
	want := map[string][]int{}
	round := func() {
		for _, ch := range all {
			publishRange(t, ingest, ch, n, n+1)
			want[ch] = append(want[ch], n)
			n++
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 40 {
		round()
	}
	// Redis replicates asynchronously: a master killed before its replica
	// has its writes loses them. That is Redis's to answer for, not the
	// bus's; the test kills the master once the replica has them all.
	sub.waitRecords(t, n, 10*time.Second)
	c.WaitReplicated(t, victim, 5*time.Second)
	victim.Stop(t)
	killed := time.Now()
	t.Logf("killed master %s of slot %d after %d records", victim.Addr(), victimSlot, n)

	// Records flow while the replica is promoted, and a while after.
	var ingestDown, streamDown atomic.Bool
	probe := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ingest.Health(ctx) != nil {
			ingestDown.Store(true)
		}
		if stream.Health(ctx) != nil {
			streamDown.Store(true)
		}
	}
	var promoted time.Time
	for time.Since(killed) < 15*time.Second {
		round()
		probe()
		if promoted.IsZero() {
			if m := c.MasterOf(victimSlot); m != nil && m != victim {
				promoted = time.Now()
				t.Logf("replica %s promoted %v after the kill", m.Addr(), promoted.Sub(killed).Round(time.Millisecond))
			}
		} else if time.Since(promoted) > time.Second {
			break
		}
	}
	if promoted.IsZero() {
		t.Fatalf("no replica promoted within 15s of killing %s", victim.Addr())
	}
	sent := time.Now()
	sub.waitRecords(t, n, 30*time.Second)
	t.Logf("%d records on %d channels; all delivered %v after the last was sent",
		n, len(all), time.Since(sent).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond) // a duplicate would come in this time
	got := records(t, sub.snapshot())
	per := byChannel(got)
	for _, ch := range all {
		if !slices.Equal(per[ch], want[ch]) {
			t.Errorf("channel %s (slot %d): got %d records %v, want %d %v",
				ch, slotOf(ch), len(per[ch]), per[ch], len(want[ch]), want[ch])
		}
	}
	if len(got) != n {
		t.Errorf("%d records delivered, %d published", len(got), n)
	}
	for _, e := range sub.snapshot() {
		if e.Kind == EventGap {
			t.Errorf("gap notice across the failover")
		}
	}
	if !ingestDown.Load() {
		t.Errorf("ingest Health never reported the failed master")
	}
	if !streamDown.Load() {
		t.Errorf("stream Health never reported the failed master")
	}
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return ingest.Health(context.Background()) == nil && stream.Health(context.Background()) == nil
	}, "health did not come back after the failover: ingest %v, stream %v",
		func() any { return ingest.Health(context.Background()) },
		func() any { return stream.Health(context.Background()) })
}

// TestRedisClusterReshard: the slot of one channel moves to another master
// (keys migrated, then the slot reassigned) while records flow on channels
// of every master. Redis drops the stream node's shard channel
// subscription of that slot (sunsubscribe), the stream node replaces the
// readers of both masters, and every record arrives exactly once and in
// order per channel, those of the moved channel too.
func TestRedisClusterReshard(t *testing.T) {
	c := testsupport.StartRedisCluster(t, 3)
	ingest, stream := clusterBuses(t, c.URLs())
	keys, slotOf := redisKeys{cluster: true}, clusterSlotOf
	chans := clusterChannels(t, 1)
	all := []string{chans[0][0], chans[1][0], chans[2][0]}
	moved := all[0]
	sub := subscribe(t, stream, "*", SubscribeOptions{})

	// One goroutine publishes rounds until stop is closed.
	stop := make(chan struct{})
	type result struct {
		n    int
		want map[string][]int
	}
	res := make(chan result, 1)
	go func() {
		n, want := 0, map[string][]int{}
		defer func() { res <- result{n, want} }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, ch := range all {
				if err := ingest.Publish(context.Background(), ch, numbered(n)); err != nil {
					t.Errorf("publish %d: %v", n, err)
					return
				}
				want[ch] = append(want[ch], n)
				n++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	c.MoveSlot(t, slotOf(moved), c.Nodes[1])
	t.Logf("slot %d of %s moved to %s in %v", slotOf(moved), moved, c.Nodes[1].Addr(),
		time.Since(start).Round(time.Millisecond))
	// The stream node follows: its reader of the new master serves the slot.
	testsupport.Eventually(t, 10*time.Second, func() bool {
		for _, rd := range stream.src.shards[0].snapshotReaders() {
			if rd.client.(*redis.Client).Options().Addr == c.Nodes[1].Addr() && slices.Contains(rd.channels, keys.notify(moved)) {
				return true
			}
		}
		return false
	}, "no reader of %s subscribed to the moved slot", c.Nodes[1].Addr())
	time.Sleep(300 * time.Millisecond)
	close(stop)
	r := <-res
	deadline := time.Now().Add(30 * time.Second)
	for len(records(t, sub.snapshot())) < r.n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would come in this time
	got := records(t, sub.snapshot())
	per := byChannel(got)
	for _, ch := range all {
		if !slices.Equal(per[ch], r.want[ch]) {
			t.Errorf("channel %s (slot %d): got %d records, want %d; missing %v, got %v",
				ch, slotOf(ch), len(per[ch]), len(r.want[ch]), missing(r.want[ch], per[ch]), per[ch])
		}
	}
	if len(got) != r.n {
		t.Errorf("%d records delivered, %d published", len(got), r.n)
	}
	t.Logf("%d records on %d channels", r.n, len(all))
}

// missing returns the numbers of want not in got.
func missing(want, got []int) []int {
	var out []int
	for _, n := range want {
		if !slices.Contains(got, n) {
			out = append(out, n)
		}
	}
	return out
}

// clusterBuses starts an ingest and a stream node on the Redis Cluster at
// urls, the stream node subscribed on every master.
func clusterBuses(t *testing.T, urls string) (ingest, stream *Redis) {
	t.Helper()
	edit := func(cfg *RedisConfig) { cfg.Cluster = true }
	ingest, _ = newRedisBus(t, urls, RoleIngest, edit)
	stream, _ = newRedisBus(t, urls, RoleStream, edit)
	activeBus(t, stream)
	return ingest, stream
}

// clusterSlotOf returns the cluster slot of channel's keys.
func clusterSlotOf(channel string) int { return keySlot(redisKeys{cluster: true}.stream(channel)) }

// clusterChannels returns n channel names for each third of the slots,
// which a cluster of three masters serves one each as the tests make it.
func clusterChannels(t testing.TB, n int) [][]string {
	return shardChannels(t, 3, func(ch string) int { return clusterSlotOf(ch) * 3 / clusterSlots }, n)
}

// TestRedisClusterBuckets: in a cluster a flush over 40 channels writes
// every channel's keys in its bucket's slot, numbers each bucket's records
// from the bucket's one sequence in publish order (one transaction per
// bucket), and with PublishRecords the per-record messages carry those
// IDs; a stream node delivers each record once.
func TestRedisClusterBuckets(t *testing.T) {
	c := testsupport.StartRedisCluster(t, 3)
	ingest, _ := newRedisBus(t, c.URLs(), RoleIngest, func(cfg *RedisConfig) { cfg.Cluster, cfg.PublishRecords = true, true })
	stream, _ := newRedisBus(t, c.URLs(), RoleStream, func(cfg *RedisConfig) { cfg.Cluster = true })
	activeBus(t, stream)
	all := subscribe(t, stream, "host-*", SubscribeOptions{})
	var chans []string
	for i := range 40 {
		chans = append(chans, fmt.Sprintf("host-%d", i))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// PUBLISH reaches the subscribers of every node of a cluster.
	raw := c.MasterOf(0).Client(t).Subscribe(ctx, chans...)
	defer raw.Close()
	for range chans {
		if _, err := raw.Receive(ctx); err != nil {
			t.Fatalf("raw subscribe: %v", err)
		}
	}
	const rounds = 20
	total := rounds * len(chans)
	err := ingest.PublishBatch(ctx, func(yield func(string, []byte) bool) {
		for r := range rounds {
			for j, ch := range chans {
				if !yield(ch, numbered(r*len(chans)+j)) {
					return
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	got := all.waitRecords(t, total, 10*time.Second)
	if n := numbers(got); len(n) != total {
		t.Fatalf("got %d records, want %d", len(n), total)
	}
	byN := slices.Clone(got)
	slices.SortFunc(byN, func(a, b gotRecord) int { return a.N - b.N })
	var last [clusterBuckets]position
	own := map[string][]string{} // per channel: the records' own IDs, in order
	for i, r := range byN {
		if r.N != i {
			t.Fatalf("record %d missing or repeated (got %d)", i, r.N)
		}
		idStr, _, _ := strings.Cut(r.ID, "~")
		id, ok := parseStreamID(idStr)
		k := bucketOf(r.Channel)
		if !ok || !last[k].less(id) {
			t.Fatalf("record %d of %s (bucket %d): ID %q not after %v", r.N, r.Channel, k, r.ID, last[k])
		}
		last[k] = id
		own[r.Channel] = append(own[r.Channel], idStr)
	}

	keys := redisKeys{cluster: true}
	client := stream.src.shards[0].client
	for _, ch := range chans {
		k := bucketOf(ch)
		for _, key := range []string{keys.stream(ch), keys.meta(ch), keys.bucketState(k)} {
			if n, err := client.Exists(ctx, key).Result(); err != nil || n != 1 {
				t.Errorf("%s: exists %d, %v", key, n, err)
			}
		}
		if n, _ := client.Exists(ctx, "logviewer:stream:{"+ch+"}").Result(); n != 0 {
			t.Errorf("%s has a stream of the per-channel layout", ch)
		}
	}

	echoed := map[string][]string{}
	for i := range total {
		msg, err := raw.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("raw receive %d: %v", i, err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
			t.Fatalf("message %d is not JSON: %q", i, msg.Payload)
		}
		id, _ := m["_event_id"].(string)
		echoed[msg.Channel] = append(echoed[msg.Channel], id)
	}
	for _, ch := range chans {
		if !slices.Equal(echoed[ch], own[ch]) {
			t.Errorf("%s: per-record messages carry %v, records %v", ch, echoed[ch], own[ch])
		}
	}
}
