package publish

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// fakeSub hands out one batch of events, then nothing.
type fakeSub struct{ evs []Event }

func (f *fakeSub) Next(_ context.Context, buf []Event) ([]Event, error) {
	buf = append(buf, f.evs...)
	f.evs = nil
	return buf, nil
}

func (f *fakeSub) Close() error { return nil }

// tokenRecord is a record of channel at id as a stream node builds it.
func tokenRecord(channel string, id position) Event {
	return Event{Kind: EventRecord, Record: batchRecord(channel, id, `{"short_message":"x"}`)}
}

// TestResumeTokenRoundTrip: the token a multi-shard subscription gives a
// record parses back to the positions it had delivered, per shard, and
// the record's JSON and SSE event carry it.
func TestResumeTokenRoundTrip(t *testing.T) {
	src := &RedisSource{shards: make([]*redisShard, 3)}
	chans := shardChannels(t, 3, func(ch string) int { return shardIndex(ch, 3) }, 1)
	p0 := position{ms: 1764000000100, seq: 4}
	p1 := position{ms: 1764000000090, seq: 17}
	p2 := position{ms: 1764000000105, seq: 0}
	inner := &fakeSub{evs: []Event{tokenRecord(chans[1][0], p1), tokenRecord(chans[2][0], p2), tokenRecord(chans[0][0], p0)}}
	floors := []position{{ms: 1764000000000}, {ms: 1764000000000}, {ms: 1764000000000}}
	sub := newCursorSub(src, inner, nil, nil, floors)
	evs, _ := sub.Next(context.Background(), nil)
	last := evs[len(evs)-1].Record
	if !strings.HasPrefix(last.ID, p0.String()+"~0.") || len(last.ID) > 40 {
		t.Fatalf("token %q", last.ID)
	}
	if want := `{"_event_id":"` + last.ID + `","_channel":"` + chans[0][0] + `","short_message":"x"}`; string(last.JSON) != want {
		t.Errorf("JSON %s, want %s", last.JSON, want)
	}
	if want := "id: " + last.ID + "\ndata: " + string(last.JSON) + "\n\n"; string(last.SSE) != want {
		t.Errorf("SSE %q, want %q", last.SSE, want)
	}
	rp, ok := parseResume(last.ID)
	if !ok {
		t.Fatalf("parse %q", last.ID)
	}
	for u, want := range []position{p0, p1, p2} {
		if got := rp.at(uint32(u)); got != want {
			t.Errorf("shard %d: %v, want %v", u, got, want)
		}
	}
	// A plain ID resumes every sequence after it.
	rp, ok = parseResume(p1.String())
	if !ok || rp.at(0) != p1 || rp.at(7) != p1 {
		t.Errorf("plain ID: %+v %v", rp, ok)
	}
}

// bucketFloors returns a start floor at ms for every cluster bucket.
func bucketFloors(ms uint64) []position {
	floors := make([]position, clusterBuckets)
	for k := range floors {
		floors[k] = position{ms: ms}
	}
	return floors
}

// TestResumeTokenCluster: a cluster's token lists every bucket, however
// many channels are active, and parses back to the last position
// delivered of each (or its start floor).
func TestResumeTokenCluster(t *testing.T) {
	src := &RedisSource{keys: redisKeys{cluster: true}, shards: make([]*redisShard, 1)}
	base := position{ms: 1764000010000}
	floor := position{ms: base.ms - 20000}
	inner := &fakeSub{}
	want := make([]position, clusterBuckets)
	for k := range want {
		want[k] = floor
	}
	seq := make([]uint64, clusterBuckets)
	for i := range 40 {
		ch := fmt.Sprintf("host-%d", i)
		k := bucketOf(ch)
		p := position{ms: base.ms + uint64(i/3), seq: seq[k]}
		seq[k]++
		inner.evs = append(inner.evs, tokenRecord(ch, p))
		want[k] = p
	}
	sub := newCursorSub(src, inner, nil, nil, bucketFloors(floor.ms))
	evs, _ := sub.Next(context.Background(), nil)
	for i, e := range evs {
		if len(e.Record.ID) > maxTokenLen {
			t.Fatalf("event %d: token of %d bytes: %s", i, len(e.Record.ID), e.Record.ID)
		}
	}
	last := evs[len(evs)-1].Record.ID
	rp, ok := parseResume(last)
	if !ok {
		t.Fatalf("parse %q", last)
	}
	if len(rp.units) != clusterBuckets {
		t.Errorf("token %q lists %d buckets, want %d", last, len(rp.units), clusterBuckets)
	}
	for k := range want {
		if got := rp.at(uint32(k)); got != want[k] {
			t.Errorf("bucket %d: %v, want %v", k, got, want[k])
		}
	}
}

// TestClusterTokenFits: a token of every cluster bucket fits maxTokenLen
// whatever the positions (each item is bounded: see maxTokenItem) and
// parses back exactly.
func TestClusterTokenFits(t *testing.T) {
	if n := len("18446744073709551615-18446744073709551615~f") + (clusterBuckets-1)*maxTokenItem; n > maxTokenLen {
		t.Fatalf("a full cluster token may take %d bytes, maxTokenLen is %d", n, maxTokenLen)
	}
	rng := rand.New(rand.NewPCG(7, 9))
	for round := range 200 {
		own := position{ms: rng.Uint64N(math.MaxInt64), seq: rng.Uint64()}
		if round%2 == 0 {
			own.ms = math.MaxInt64 + rng.Uint64N(math.MaxInt64) // the longest ms
		}
		u := uint32(rng.IntN(clusterBuckets))
		var items []tokenItem
		want := map[uint32]position{u: own}
		for k := range uint32(clusterBuckets) {
			if k == u {
				continue
			}
			// Any position within an int64 of milliseconds of the own.
			q := position{ms: own.ms - min(own.ms, rng.Uint64N(math.MaxInt64)), seq: math.MaxUint64 - rng.Uint64N(10)}
			if rng.IntN(3) == 0 && own.ms < math.MaxUint64-math.MaxInt64 {
				q.ms = own.ms + rng.Uint64N(math.MaxInt64)
			}
			items = append(items, tokenItem{unit: k, pos: q})
			want[k] = q
		}
		slices.SortFunc(items, compareItems)
		token := own.String() + string(appendSuffix(nil, u, own, items))
		if len(token) > maxTokenLen {
			t.Fatalf("token of %d bytes: %s", len(token), token)
		}
		rp, ok := parseResume(token)
		if !ok {
			t.Fatalf("parse %q", token)
		}
		for k, p := range want {
			if got := rp.at(k); got != p {
				t.Fatalf("token %q: bucket %d at %v, want %v", token, k, got, p)
			}
		}
	}
}

// TestResumeTokenManyShards: with more standalone shards than a token
// holds, those left out resume from the oldest of their positions: never
// after their own (no record lost).
func TestResumeTokenManyShards(t *testing.T) {
	const shards = 200
	own := position{ms: 1764000010000, seq: 3}
	var items []tokenItem
	want := map[uint32]position{0: own}
	for k := uint32(1); k < shards; k++ {
		q := position{ms: own.ms - uint64(k)*1000, seq: uint64(k)}
		items = append(items, tokenItem{unit: k, pos: q})
		want[k] = q
	}
	slices.SortFunc(items, compareItems)
	token := own.String() + string(appendSuffix(nil, 0, own, items))
	if len(token) > maxTokenLen {
		t.Fatalf("token of %d bytes", len(token))
	}
	rp, ok := parseResume(token)
	if !ok {
		t.Fatalf("parse %q", token)
	}
	exact := 0
	for k, p := range want {
		got := rp.at(k)
		if p.less(got) {
			t.Fatalf("shard %d resumes at %v, after its position %v", k, got, p)
		}
		if got == p {
			exact++
		}
	}
	if exact < 20 || exact == shards {
		t.Errorf("%d of %d shards exact", exact, shards)
	}
}

// TestBucketTags: the buckets' hash tags spread over the slot ranges, and
// every key of a cluster channel is in its bucket's slot.
func TestBucketTags(t *testing.T) {
	keys := redisKeys{prefix: "p:", cluster: true}
	seen := map[int]bool{}
	for k := range clusterBuckets {
		slot := bucketSlot(k)
		if slot < k*clusterSlots/clusterBuckets || slot >= (k+1)*clusterSlots/clusterBuckets || seen[slot] {
			t.Errorf("bucket %d (tag %q) in slot %d", k, bucketTags[k], slot)
		}
		seen[slot] = true
		if got := keySlot(keys.bucketState(k)); got != slot {
			t.Errorf("bucket %d: state in slot %d, want %d", k, got, slot)
		}
	}
	for _, ch := range []string{"web-1", "db", "", "a{b}c"} {
		slot := bucketSlot(bucketOf(ch))
		for _, key := range []string{keys.stream(ch), keys.meta(ch), keys.state(ch)} {
			if got := keySlot(key); got != slot {
				t.Errorf("%s: slot %d, want %d", key, got, slot)
			}
		}
		if got, want := keys.notify(ch), keys.notifySlot(slot); got != want {
			t.Errorf("notify(%q) = %q, want %q", ch, got, want)
		}
	}
}

func TestParseResumeRejects(t *testing.T) {
	for _, s := range []string{"", "1-", "1-2~", "1-2~z!", "1-2~0.1_2", "1-2~0.1__2", "1-2~0.1_2_-3",
		"1-2~0.1_5_3", "1-2~0.1_x_3", "1-2~0.1_2_3.", "5-2~0.1_-18446744073709551615_0"} {
		if _, ok := parseResume(s); ok {
			t.Errorf("parseResume(%q) accepted", s)
		}
	}
	for _, s := range []string{"1-2", "7-2~0.1_2_3", "7-2~a1b2._3_0.0_-4_1"} {
		if _, ok := parseResume(s); !ok {
			t.Errorf("parseResume(%q) refused", s)
		}
	}
}

// BenchmarkResumeToken: what a subscription over two shards pays per
// record for its resume token (the record's JSON and SSE event copied
// with the token as ID).
func BenchmarkResumeToken(b *testing.B) {
	src := &RedisSource{shards: make([]*redisShard, 2)}
	chans := shardChannels(b, 2, func(ch string) int { return shardIndex(ch, 2) }, 1)
	gelf := `{"version":"1.1","host":"bench","short_message":"GET /api/items/42 200 1532 bytes in 0.004s","timestamp":1700000000.123,"level":6}`
	recs := make([]Event, 64)
	for i := range recs {
		// batches of 8 records of one shard, as notifications bring them
		recs[i] = Event{Kind: EventRecord, Record: batchRecord(chans[i/8%2][0], position{ms: 1764000000000 + uint64(i/16), seq: uint64(i % 16)}, gelf)}
	}
	sub := newCursorSub(src, &fakeSub{}, nil, nil, []position{{ms: 1764000000000}, {ms: 1764000000000}})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = sub.retag(recs[i%len(recs)].Record)
	}
}

// BenchmarkResumeTokenCluster: what a glob subscription over a cluster
// pays per record for its token, with records of many channels
// interleaved (each record a new suffix): it does not grow with them.
func BenchmarkResumeTokenCluster(b *testing.B) {
	for _, channels := range []int{4, 500} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			src := &RedisSource{keys: redisKeys{cluster: true}}
			gelf := `{"version":"1.1","host":"bench","short_message":"GET /api/items/42 200 1532 bytes in 0.004s","timestamp":1700000000.123,"level":6}`
			recs := make([]Record, 4096)
			for i := range recs {
				recs[i] = batchRecord(fmt.Sprintf("app-%d", i%channels), position{ms: 1764000000000 + uint64(i), seq: 1}, gelf)
			}
			sub := newCursorSub(src, &fakeSub{}, nil, nil, bucketFloors(1764000000000))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = sub.retag(recs[i%len(recs)])
			}
		})
	}
}
