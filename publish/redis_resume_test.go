package publish

import (
	"context"
	"fmt"
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
	sub := newCursorSub(src, inner, nil, nil, floors, position{})
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

// TestResumeTokenCluster: a cluster's token lists the channels delivered
// within resumeSlack of the record, stays within maxTokenLen however many
// channels are active, and the rest resume from the slack point.
func TestResumeTokenCluster(t *testing.T) {
	src := &RedisSource{keys: redisKeys{cluster: true}, shards: make([]*redisShard, 1)}
	base := position{ms: 1764000010000}
	inner := &fakeSub{}
	old := tokenRecord("old", position{ms: base.ms - 5000, seq: 1})
	inner.evs = append(inner.evs, old)
	for i := 0; i < 40; i++ {
		inner.evs = append(inner.evs, tokenRecord(fmt.Sprintf("host-%d", i), base.add(uint64(i))))
	}
	sub := newCursorSub(src, inner, nil, nil, nil, position{ms: base.ms - 20000})
	evs, _ := sub.Next(context.Background(), nil)
	for i, e := range evs {
		if len(e.Record.ID) > maxTokenLen {
			t.Fatalf("event %d: token of %d bytes: %s", i, len(e.Record.ID), e.Record.ID)
		}
	}
	rp, ok := parseResume(evs[3].Record.ID) // after host-0..host-2
	if !ok {
		t.Fatalf("parse %q", evs[3].Record.ID)
	}
	for i := 0; i < 3; i++ {
		if got := rp.at(channelHash(fmt.Sprintf("host-%d", i))); got != base.add(uint64(i)) {
			t.Errorf("host-%d: %v", i, got)
		}
	}
	if got, want := rp.at(channelHash("old")), (position{ms: base.ms - resumeSlack}); got != want {
		t.Errorf("a channel quiet for longer than the slack: %v, want %v", got, want)
	}
	if got, want := rp.at(channelHash("host-39")), (position{ms: base.ms - resumeSlack}); got != want {
		t.Errorf("a channel not delivered yet: %v, want %v", got, want)
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
	sub := newCursorSub(src, &fakeSub{}, nil, nil, []position{{ms: 1764000000000}, {ms: 1764000000000}}, position{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = sub.retag(recs[i%len(recs)].Record)
	}
}

// referenceClusterSuffix is how a cluster token's suffix was built before
// the recent list: every sequence's position kept, those past the floor
// sorted. TestClusterTokenMatchesFullSort checks the bounded list against it.
type referenceClusterSuffix struct {
	cur map[uint32]position
	def position
}

func (r *referenceClusterSuffix) token(u uint32, p position) string {
	if last, ok := r.cur[u]; !ok || last.less(p) {
		r.cur[u] = p
	}
	floor := position{ms: p.ms - min(p.ms, resumeSlack)}
	var items []tokenItem
	if floor.less(r.def) {
		items = append(items, tokenItem{pos: r.def, def: true})
	}
	for v, q := range r.cur {
		switch {
		case v == u:
		case floor.less(q) || floor.less(r.def):
			items = append(items, tokenItem{unit: v, pos: q})
		default:
			delete(r.cur, v)
		}
	}
	slices.SortFunc(items, compareItems)
	s := appendSuffix(nil, u, p, items)
	return p.String() + string(s)
}

// TestClusterTokenMatchesFullSort: a cluster subscription's tokens, built
// from its bounded list of recent sequences, are those of a full sort of
// every sequence, over few and many channels, with and without a resume
// point later than the records.
func TestClusterTokenMatchesFullSort(t *testing.T) {
	src := &RedisSource{keys: redisKeys{cluster: true}}
	for _, tc := range []struct {
		name     string
		channels int
		def      position
	}{
		{"three channels", 3, position{}},
		{"forty channels", 40, position{}},
		{"forty channels after a resume", 40, position{ms: 1764000000900, seq: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.channels)))
			sub := newCursorSub(src, &fakeSub{}, &resumePoint{def: tc.def}, nil, nil, tc.def)
			ref := &referenceClusterSuffix{cur: map[uint32]position{}, def: tc.def}
			ms := uint64(1764000000000)
			seqs := map[string]uint64{}
			for i := range 5000 {
				ms += uint64(rng.IntN(40)) // records come in time order, several per millisecond
				ch := fmt.Sprintf("app-%d", rng.IntN(tc.channels))
				seqs[ch]++
				p := position{ms: ms, seq: seqs[ch]}
				got := sub.retag(batchRecord(ch, p, `{"short_message":"x"}`)).ID
				want := ref.token(channelHash(ch), p)
				if got != want {
					t.Fatalf("record %d (%s at %v): token %q, want %q", i, ch, p, got, want)
				}
				if len(got) > maxTokenLen {
					t.Fatalf("record %d: token %q longer than %d", i, got, maxTokenLen)
				}
			}
		})
	}
}

// BenchmarkResumeTokenCluster: what a glob subscription over a cluster
// pays per record for its token, with records of channels many channels
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
			sub := newCursorSub(src, &fakeSub{}, nil, nil, nil, position{ms: 1764000000000})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = sub.retag(recs[i%len(recs)])
			}
		})
	}
}
