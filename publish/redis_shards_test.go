package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// shardChannels returns, for each of parts, n channel names that part
// holds.
func shardChannels(t testing.TB, parts int, part func(channel string) int, n int) [][]string {
	t.Helper()
	out := make([][]string, parts)
	for i := 0; i < 10000; i++ {
		ch := fmt.Sprintf("host-%d", i)
		if k := part(ch); len(out[k]) < n {
			out[k] = append(out[k], ch)
		}
	}
	for k := range out {
		if len(out[k]) < n {
			t.Fatalf("shard %d: only %d channels of 10000 names", k, len(out[k]))
		}
	}
	return out
}

// byChannel splits records by channel, keeping their order.
func byChannel(rs []gotRecord) map[string][]int {
	out := map[string][]int{}
	for _, r := range rs {
		out[r.Channel] = append(out[r.Channel], r.N)
	}
	return out
}

// scaleOutSetup starts a multi-Redis deployment: its --redis value, whether
// it is a cluster, how many parts (shards or masters) hold the channels,
// and which part holds a channel.
type scaleOutSetup struct {
	name  string
	start func(t *testing.T) (url string, cluster bool, parts int, part func(string) int)
}

// scaleOutSetups are two standalone shards and a Redis Cluster of three
// masters.
func scaleOutSetups() []scaleOutSetup {
	return []scaleOutSetup{
		{"two shards", func(t *testing.T) (string, bool, int, func(string) int) {
			a, b := testsupport.StartRedis(t), testsupport.StartRedis(t)
			return a.URL() + "," + b.URL(), false, 2, func(ch string) int { return shardIndex(ch, 2) }
		}},
		{"cluster of three masters", func(t *testing.T) (string, bool, int, func(string) int) {
			c := testsupport.StartRedisCluster(t, 3)
			keys := redisKeys{cluster: true}
			// Redis Cluster create gives each master a third of the slots.
			return c.URLs(), true, 3, func(ch string) int { return keySlot(keys.stream(ch)) * 3 / clusterSlots }
		}},
	}
}

// TestRedisScaleOut: two Redis as shards, and a Redis Cluster of three
// masters; two ingest and two stream nodes: every record arrives once, in
// order per channel, on both stream nodes, and a client resumes a channel
// of each shard or master on the other stream node without gap or
// duplicate.
func TestRedisScaleOut(t *testing.T) {
	for _, tc := range scaleOutSetups() {
		t.Run(tc.name, func(t *testing.T) {
			url, cluster, parts, part := tc.start(t)
			edit := func(c *RedisConfig) { c.Cluster = cluster }
			in1, _ := newRedisBus(t, url, RoleIngest, edit)
			in2, _ := newRedisBus(t, url, RoleIngest, edit)
			s1, _ := newRedisBus(t, url, RoleStream, edit)
			s2, _ := newRedisBus(t, url, RoleStream, edit)
			activeBus(t, s1)
			activeBus(t, s2)
			chans := shardChannels(t, parts, part, 2)
			c1 := subscribe(t, s1, "*", SubscribeOptions{})
			c2 := subscribe(t, s2, "host-*", SubscribeOptions{})

			// Each channel is fed by one ingest node, so its order is the
			// publish order.
			want := map[string][]int{}
			n := 0
			for round := 0; round < 100; round++ {
				for k, list := range chans {
					for j, ch := range list {
						bus := []*Redis{in1, in2}[(k+j)%2]
						publishRange(t, bus, ch, n, n+1)
						want[ch] = append(want[ch], n)
						n++
					}
				}
			}
			for i, c := range []*collector{c1, c2} {
				got := byChannel(c.waitRecords(t, n, 20*time.Second))
				for ch, w := range want {
					if !slices.Equal(got[ch], w) {
						t.Errorf("stream node %d, channel %s: got %v, want %v", i+1, ch, got[ch], w)
					}
				}
			}

			// Resume one channel of each part on the other node.
			got := records(t, c1.snapshot())
			for _, list := range chans {
				ch := list[0]
				var mine []gotRecord
				for _, r := range got {
					if r.Channel == ch {
						mine = append(mine, r)
					}
				}
				c := subscribe(t, s2, ch, SubscribeOptions{Since: mine[40].ID})
				rs := c.waitRecords(t, len(mine)-41, 10*time.Second)
				if !slices.Equal(numbers(rs), numbers(mine[41:])) {
					t.Errorf("resume %s after %s on the other node: got %v, want %v", ch, mine[40].ID, numbers(rs), numbers(mine[41:]))
				}
				for _, e := range c.snapshot() {
					if e.Kind == EventGap {
						t.Errorf("resume %s: gap notice", ch)
					}
				}
			}
			// Tail of a glob across every part.
			tl := subscribe(t, s2, "host-*", SubscribeOptions{Tail: 10})
			if rs := tl.waitRecords(t, 10, 10*time.Second); len(rs) != 10 {
				t.Errorf("tail 10 of host-*: %d records", len(rs))
			}
		})
	}
}

// TestRedisShardDown: with one of two shards stopped for 5 s, the other
// shard's channels go on without a pause, /healthz's error names the
// stopped shard, and the stopped shard's records arrive once it is back.
func TestRedisShardDown(t *testing.T) {
	a, b := testsupport.StartRedis(t), testsupport.StartRedis(t)
	url := a.URL() + "," + b.URL()
	ingest, _ := newRedisBus(t, url, RoleIngest, nil)
	stream, _ := newRedisBus(t, url, RoleStream, nil)
	activeBus(t, stream)
	chans := shardChannels(t, 2, func(ch string) int { return shardIndex(ch, 2) }, 1)
	up, down := chans[0][0], chans[1][0]
	c := subscribe(t, stream, "*", SubscribeOptions{})

	b.Stop(t)
	stopped := time.Now()
	n := 0
	var maxPause time.Duration
	lastUp := time.Now()
	seen := 0
	for time.Since(stopped) < 5*time.Second {
		publishRange(t, ingest, up, n, n+1)
		publishRange(t, ingest, down, n+1, n+2)
		n += 2
		// The up shard's record arrives while the other is down.
		deadline := time.Now().Add(2 * time.Second)
		for {
			got := byChannel(records(t, c.snapshot()))[up]
			if len(got) > seen {
				seen = len(got)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("record %d of %s (the up shard) did not arrive within 2s while the other shard is down", n-2, up)
			}
			time.Sleep(time.Millisecond)
		}
		maxPause = max(maxPause, time.Since(lastUp))
		lastUp = time.Now()
		time.Sleep(20 * time.Millisecond)
	}
	err := ingest.Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), b.Addr()) || strings.Contains(err.Error(), a.Addr()) {
		t.Errorf("health with %s down: %v; want an error naming it only", b.Addr(), err)
	}
	b.Start(t)
	got := c.waitRecords(t, n, 20*time.Second)
	per := byChannel(got)
	var wantUp, wantDown []int
	for i := 0; i < n; i += 2 {
		wantUp, wantDown = append(wantUp, i), append(wantDown, i+1)
	}
	if !slices.Equal(per[up], wantUp) || !slices.Equal(per[down], wantDown) {
		t.Fatalf("after the shard came back: %s %v, %s %v", up, per[up], down, per[down])
	}
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return ingest.Health(context.Background()) == nil && stream.Health(context.Background()) == nil
	}, "health did not come back")
	t.Logf("%d records per channel; longest wait for the up shard's record: %v", n/2, maxPause)
}

// TestRedisClusterMasterDown: a master of a 3-master cluster stops for
// 3 s while records flow to channels on every master. In a cluster a
// flush that fails on one master is retried whole; the channels it had
// already written are not written again, so every record arrives once and
// in order per channel once the master is back.
func TestRedisClusterMasterDown(t *testing.T) {
	c := testsupport.StartRedisCluster(t, 3)
	ingest, stream := clusterBuses(t, c.URLs())
	chans := clusterChannels(t, 1)
	all := subscribe(t, stream, "*", SubscribeOptions{})

	n := 0
	want := map[string][]int{}
	send := func() {
		for _, list := range chans {
			publishRange(t, ingest, list[0], n, n+1)
			want[list[0]] = append(want[list[0]], n)
			n++
		}
	}
	send()
	all.waitRecords(t, n, 10*time.Second)
	c.Nodes[1].Stop(t)
	stopped := time.Now()
	for time.Since(stopped) < 3*time.Second {
		send()
		time.Sleep(50 * time.Millisecond)
	}
	c.Nodes[1].Start(t)
	send()
	got := byChannel(all.waitRecords(t, n, 30*time.Second))
	for ch, w := range want {
		if !slices.Equal(got[ch], w) {
			t.Errorf("channel %s: got %v, want %v", ch, got[ch], w)
		}
	}
}

// TestRedisGlobResumeAcrossShards: over two standalone shards and over a
// Redis Cluster of three masters, a glob subscription breaks off while
// records flow, resumes on the other stream node from the last event ID it
// got, breaks off again and resumes on the first: every record arrives
// exactly once, in order per channel, with more channels active than a
// cluster token held when each channel had its own ID sequence.
func TestRedisGlobResumeAcrossShards(t *testing.T) {
	for _, tc := range scaleOutSetups() {
		t.Run(tc.name, func(t *testing.T) {
			url, cluster, parts, part := tc.start(t)
			edit := func(c *RedisConfig) { c.Cluster = cluster }
			in1, _ := newRedisBus(t, url, RoleIngest, edit)
			in2, _ := newRedisBus(t, url, RoleIngest, edit)
			nodes := make([]*Redis, 2)
			for i := range nodes {
				nodes[i], _ = newRedisBus(t, url, RoleStream, edit)
				activeBus(t, nodes[i])
			}
			// 14 channels per shard or master, 28 or 42 in all: more than
			// a cluster token listed when each channel had its own ID
			// sequence (about 9), all active at once.
			chans := shardChannels(t, parts, part, 14)
			var all []string
			for _, list := range chans {
				all = append(all, list...)
			}
			if cluster {
				buckets := map[int]bool{}
				for _, ch := range all {
					buckets[bucketOf(ch)] = true
				}
				if len(buckets) < clusterBuckets {
					t.Fatalf("the channels fill %d buckets of %d", len(buckets), clusterBuckets)
				}
			}

			first := subscribe(t, nodes[0], "host-*", SubscribeOptions{})
			const rounds = 300
			want := map[string][]int{}
			for r := 0; r < rounds; r++ {
				for j, ch := range all {
					want[ch] = append(want[ch], r*len(all)+j)
				}
			}
			total := rounds * len(all)
			published := make(chan struct{})
			go func() {
				defer close(published)
				// Each channel is fed by one ingest node, so its order is
				// the publish order.
				for r := 0; r < rounds; r++ {
					for j, ch := range all {
						bus := []*Redis{in1, in2}[j%2]
						n := r*len(all) + j
						if err := bus.Publish(context.Background(), ch, numbered(n)); err != nil {
							t.Errorf("publish %d: %v", n, err)
							return
						}
					}
					time.Sleep(time.Millisecond)
				}
			}()

			// The client breaks off mid-stream twice and resumes each time
			// on the other node, from the last ID it got.
			var seen []gotRecord
			cur := first
			for hop := 1; hop <= 2; hop++ {
				got := cur.waitRecords(t, total/3, 20*time.Second)[:total/3]
				cur.cancel()
				<-cur.done
				seen = append(seen, got...)
				last := got[len(got)-1].ID
				if len(last) > maxTokenLen {
					t.Fatalf("token %q: %d bytes", last, len(last))
				}
				if rp, ok := parseResume(last); cluster && (!ok || len(rp.units) != clusterBuckets) {
					t.Errorf("token %q does not list the %d buckets", last, clusterBuckets)
				}
				t.Logf("hop %d: resume after %q on node %d", hop, last, hop%2+1)
				cur = subscribe(t, nodes[hop%2], "host-*", SubscribeOptions{Since: last})
			}
			<-published
			rest := total - len(seen)
			seen = append(seen, cur.waitRecords(t, rest, 20*time.Second)...)
			time.Sleep(200 * time.Millisecond) // a duplicate would come in this time
			seen = append(seen[:total-rest], records(t, cur.snapshot())...)
			got := byChannel(seen)
			for _, ch := range all {
				if !slices.Equal(got[ch], want[ch]) {
					t.Errorf("channel %s: got %d records %v, want %d", ch, len(got[ch]), got[ch], len(want[ch]))
				}
			}
			for _, e := range cur.snapshot() {
				if e.Kind == EventGap {
					t.Errorf("gap notice on resume")
				}
			}
		})
	}
}
