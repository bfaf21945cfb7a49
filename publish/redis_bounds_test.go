package publish

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestChannelStatsBounded: a stream node counting records of ever new
// channels keeps at most maxChannelStats of them, forgetting those seen
// least recently first.
func TestChannelStatsBounded(t *testing.T) {
	s := newChannelStats()
	start := time.Unix(1764000000, 0)
	for i := range maxChannelStats + 1 {
		s.add("ch-"+strconv.Itoa(i), start.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(s.channels); n > maxChannelStats {
		t.Fatalf("%d channels kept, bound %d", n, maxChannelStats)
	}
	if _, ok := s.channels["ch-0"]; ok {
		t.Errorf("the channel seen least recently is still kept")
	}
	if c, ok := s.channels["ch-"+strconv.Itoa(maxChannelStats)]; !ok || c.count != 1 {
		t.Errorf("the newest channel is not counted")
	}
}

// TestReaderPositionsBounded: a reader's per-channel positions stay within
// maxChannelCache however many channels a sender names; the oldest go
// first, and a kept channel's duplicate is still refused.
func TestReaderPositionsBounded(t *testing.T) {
	rd := &redisReader{lastID: make(map[string]position)}
	for i := range maxChannelCache + 1 {
		if !rd.advance("ch-"+strconv.Itoa(i), position{ms: 1764000000000 + uint64(i)}) {
			t.Fatalf("record %d refused", i)
		}
	}
	if n := len(rd.lastID); n > maxChannelCache {
		t.Fatalf("%d positions kept, bound %d", n, maxChannelCache)
	}
	if _, ok := rd.lastID["ch-0"]; ok {
		t.Errorf("the oldest position is still kept")
	}
	newest := "ch-" + strconv.Itoa(maxChannelCache)
	if rd.advance(newest, position{ms: 1764000000000 + uint64(maxChannelCache)}) {
		t.Errorf("a duplicate of the newest channel's record was taken")
	}
	if rd.lastAny != (position{ms: 1764000000000 + uint64(maxChannelCache)}) {
		t.Errorf("lastAny %v", rd.lastAny)
	}
}

// TestClusterReaderSubscribesBucketSlots: a cluster reader subscribes to
// the shard channels of the buckets' slots its master serves, not to
// every slot's; a master serving none keeps one silent subscription.
func TestClusterReaderSubscribesBucketSlots(t *testing.T) {
	sh := &redisShard{keys: redisKeys{cluster: true}}
	all := make([]bool, clusterSlots)
	for i := range all {
		all[i] = true
	}
	rd := sh.newClusterReader("127.0.0.1:1", all, &redis.Options{})
	defer rd.client.Close()
	if len(rd.channels) != clusterBuckets {
		t.Errorf("a master of every slot subscribes to %d channels, want %d", len(rd.channels), clusterBuckets)
	}
	none := make([]bool, clusterSlots)
	for slot := range 100 {
		none[slot] = true
	}
	for k := range clusterBuckets {
		none[bucketSlot(k)] = false
	}
	rd2 := sh.newClusterReader("127.0.0.1:1", none, &redis.Options{})
	defer rd2.client.Close()
	if len(rd2.channels) != 1 || rd2.channels[0] != sh.keys.notifySlot(slices.Index(none, true)) {
		t.Errorf("a master of no bucket's slot subscribes to %v", rd2.channels)
	}
}
