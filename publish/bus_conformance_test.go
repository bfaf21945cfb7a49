package publish

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// busPair is a bus under test: ingest publishes, stream subscribes (the
// same bus for the memory hub and a Redis bus of role all).
type busPair struct {
	ingest, stream Bus
	wait           func(t *testing.T) // until live records reach stream
}

// busKinds are the buses every Bus must behave the same on.
var busKinds = []struct {
	name  string
	start func(t *testing.T) busPair
}{
	{"memory", func(t *testing.T) busPair {
		m := NewMemory(MemoryConfig{History: 1000})
		t.Cleanup(func() { m.Close() })
		return busPair{ingest: m, stream: m, wait: func(*testing.T) {}}
	}},
	{"one redis", func(t *testing.T) busPair {
		srv := testsupport.StartRedis(t)
		return redisPair(t, srv.URL(), nil)
	}},
	{"two redis shards", func(t *testing.T) busPair {
		a, b := testsupport.StartRedis(t), testsupport.StartRedis(t)
		return redisPair(t, a.URL()+","+b.URL(), nil)
	}},
	{"redis cluster", func(t *testing.T) busPair {
		c := testsupport.StartRedisCluster(t, 3)
		return redisPair(t, c.URLs(), func(c *RedisConfig) { c.Cluster = true })
	}},
}

// redisPair is an ingest and a stream node on url.
func redisPair(t *testing.T, url string, edit func(*RedisConfig)) busPair {
	in, _ := newRedisBus(t, url, RoleIngest, edit)
	st, _ := newRedisBus(t, url, RoleStream, edit)
	return busPair{ingest: in, stream: st, wait: func(t *testing.T) { activeBus(t, st) }}
}

// TestBusConformance: what stream relies on, on every bus: live records
// once and in order per channel with IDs increasing per channel and the
// JSON led by _event_id and _channel; tail; resume after an ID without gap
// or duplicate; a gap notice for an ID the bus cannot place; the channel
// list; ErrClosed after Close.
func TestBusConformance(t *testing.T) {
	for _, kind := range busKinds {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.start(t)
			p.wait(t)
			all := subscribe(t, p.stream, "*", SubscribeOptions{})
			web := subscribe(t, p.stream, "web-*,db", SubscribeOptions{})
			chans := []string{"web-1", "web-2", "db", "app"}
			for n := 0; n < 200; n++ {
				publishRange(t, p.ingest, chans[n%4], n, n+1)
			}
			got := all.waitRecords(t, 200, 20*time.Second)
			per := byChannel(got)
			for i, ch := range chans {
				var want []int
				for n := i; n < 200; n += 4 {
					want = append(want, n)
				}
				if !slices.Equal(per[ch], want) {
					t.Errorf("channel %s: %v", ch, per[ch])
				}
			}
			last := map[string]position{}
			for _, r := range got {
				if p.ingest == p.stream { // memory IDs: "<epoch>-<seq>", one counter
					continue
				}
				// A glob over several shards gets resume tokens: the
				// record's own ID leads (see redis_resume.go).
				own, _, _ := strings.Cut(r.ID, "~")
				id, ok := parseStreamID(own)
				if !ok || !last[r.Channel].less(id) {
					t.Fatalf("record %d of %s: ID %q not after %v", r.N, r.Channel, r.ID, last[r.Channel])
				}
				last[r.Channel] = id
			}
			for _, e := range all.snapshot() {
				if e.Kind == EventRecord && !strings.HasPrefix(string(e.Record.JSON), `{"_event_id":"`+e.Record.ID+`","_channel":"`+e.Record.Channel+`",`) {
					t.Fatalf("record JSON %s", e.Record.JSON)
				}
			}
			if n := len(web.waitRecords(t, 150, 10*time.Second)); n != 150 {
				t.Errorf("web-*,db: %d records, want 150", n)
			}

			// Tail of one channel, then resume it after its 10th record.
			var web1 []gotRecord
			for _, r := range got {
				if r.Channel == "web-1" {
					web1 = append(web1, r)
				}
			}
			tail := subscribe(t, p.stream, "web-1", SubscribeOptions{Tail: 5})
			if rs := tail.waitRecords(t, 5, 10*time.Second); !slices.Equal(numbers(rs), numbers(web1[len(web1)-5:])) {
				t.Errorf("tail 5 of web-1: %v, want %v", numbers(rs), numbers(web1[len(web1)-5:]))
			}
			res := subscribe(t, p.stream, "web-1", SubscribeOptions{Since: web1[9].ID})
			publishRange(t, p.ingest, "web-1", 1000, 1001)
			want := append(numbers(web1[10:]), 1000)
			rs := res.waitRecords(t, len(want), 10*time.Second)
			if !slices.Equal(numbers(rs), want) {
				t.Errorf("resume web-1 after %s: %v, want %v", web1[9].ID, numbers(rs), want)
			}
			for _, e := range res.snapshot() {
				if e.Kind == EventGap {
					t.Errorf("resume within the history: gap notice")
				}
			}

			// Resume the glob after its 77th record: every later record of
			// every channel once, in order per channel (across shards too).
			glob := subscribe(t, p.stream, "*", SubscribeOptions{Since: got[76].ID})
			publishRange(t, p.ingest, "app", 1001, 1002)
			wantGlob := byChannel(got[77:])
			wantGlob["web-1"] = append(wantGlob["web-1"], 1000)
			wantGlob["app"] = append(wantGlob["app"], 1001)
			glob.waitRecords(t, 200-77+2, 10*time.Second)
			time.Sleep(100 * time.Millisecond) // a duplicate would come in this time
			rs = records(t, glob.snapshot())
			for ch, w := range wantGlob {
				if g := byChannel(rs)[ch]; !slices.Equal(g, w) {
					t.Errorf("resume * after %s, channel %s: %v, want %v", got[76].ID, ch, g, w)
				}
			}
			if len(rs) != 200-77+2 {
				t.Errorf("resume * after %s: %d records, want %d", got[76].ID, len(rs), 200-77+2)
			}

			// An ID the bus cannot place: a gap notice, then the history.
			bad := subscribe(t, p.stream, "db", SubscribeOptions{Since: "not-an-id"})
			bad.waitRecords(t, 50, 10*time.Second)
			if evs := bad.snapshot(); evs[0].Kind != EventGap {
				t.Errorf("resume from a bad ID: first event %v, want a gap notice", evs[0].Kind)
			}

			infos, err := p.stream.Channels(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, ci := range infos {
				names = append(names, ci.Name)
			}
			if want := []string{"app", "db", "web-1", "web-2"}; !slices.Equal(names, want) {
				t.Errorf("channels %v, want %v", names, want)
			}
			if err := p.stream.Health(context.Background()); err != nil {
				t.Errorf("health: %v", err)
			}
			p.stream.Close()
			if _, err := p.stream.Subscribe(context.Background(), "*", SubscribeOptions{}); !errors.Is(err, ErrClosed) {
				t.Errorf("subscribe after close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestBusPublishBatch: on every bus, PublishBatch publishes a batch as
// Publish would record by record: in order per channel, whatever shard
// each channel has, the record that is not an object left out and
// reported, and none lost or repeated.
func TestBusPublishBatch(t *testing.T) {
	for _, kind := range busKinds {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.start(t)
			p.wait(t)
			bp, ok := p.ingest.(interface {
				PublishBatch(context.Context, iter.Seq2[string, []byte]) error
			})
			if !ok {
				t.Fatalf("%T has no PublishBatch", p.ingest)
			}
			all := subscribe(t, p.stream, "*", SubscribeOptions{})
			chans := []string{"web-1", "web-1", "web-2", "db", "app", "app", "app"} // runs of one channel, and not
			err := bp.PublishBatch(context.Background(), func(yield func(string, []byte) bool) {
				for n := range 140 {
					if n == 70 && !yield("web-2", []byte(`[70]`)) {
						return
					}
					if !yield(chans[n%len(chans)], numbered(n)) {
						return
					}
				}
			})
			if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
				t.Errorf("error %v, want the record that is not an object", err)
			}
			per := byChannel(all.waitRecords(t, 140, 20*time.Second))
			for _, ch := range []string{"web-1", "web-2", "db", "app"} {
				var want []int
				for n := range 140 {
					if chans[n%len(chans)] == ch {
						want = append(want, n)
					}
				}
				if !slices.Equal(per[ch], want) {
					t.Errorf("channel %s: %v, want %v", ch, per[ch], want)
				}
			}
		})
	}
}
