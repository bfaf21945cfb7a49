package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// newRedisBus starts a Redis bus on srv with its own metrics, closed on
// cleanup.
func newRedisBus(t testing.TB, url, role string, edit func(*RedisConfig)) (*Redis, *metrics.Metrics) {
	t.Helper()
	met := metrics.New(prometheus.NewRegistry())
	cfg := RedisConfig{URL: url, Role: role, Metrics: met,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if edit != nil {
		edit(&cfg)
	}
	bus, err := NewRedis(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { bus.Close() })
	return bus, met
}

// numbered is the GELF record number n of a test.
func numbered(n int) []byte {
	return fmt.Appendf(nil, `{"version":"1.1","host":"h","short_message":"line %d","level":6,"_n":%d}`, n, n)
}

// publishRange publishes records from..to-1 on channel.
func publishRange(t testing.TB, bus Bus, channel string, from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		if err := bus.Publish(context.Background(), channel, numbered(n)); err != nil {
			t.Fatalf("publish %d: %v", n, err)
		}
	}
}

// gotRecord is what a test checks of a received record.
type gotRecord struct {
	Channel string
	ID      string
	N       int
	JSON    map[string]any
}

// collector reads a subscription in the background.
type collector struct {
	mu     sync.Mutex
	events []Event
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func collect(t testing.TB, sub Subscription) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]Event, 0, 256)
		for {
			evs, err := sub.Next(ctx, buf[:0])
			c.mu.Lock()
			c.events = append(c.events, evs...)
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
		sub.Close()
	})
	return c
}

// snapshot returns the events so far.
func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// records decodes the records among evs.
func records(t testing.TB, evs []Event) []gotRecord {
	t.Helper()
	var out []gotRecord
	for _, e := range evs {
		if e.Kind != EventRecord {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Record.JSON, &m); err != nil {
			t.Fatalf("record JSON %q: %v", e.Record.JSON, err)
		}
		n, _ := m["_n"].(float64)
		out = append(out, gotRecord{Channel: e.Record.Channel, ID: e.Record.ID, N: int(n), JSON: m})
	}
	return out
}

// waitRecords waits until c holds at least n records and returns them all.
func (c *collector) waitRecords(t testing.TB, n int, timeout time.Duration) []gotRecord {
	t.Helper()
	var got []gotRecord
	testsupport.Eventually(t, timeout, func() bool {
		got = records(t, c.snapshot())
		return len(got) >= n
	}, "want %d records, have %d", n, func() any { return len(got) })
	return got
}

// numbers returns the _n of each record.
func numbers(rs []gotRecord) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.N
	}
	return out
}

// seqInts returns from..to-1.
func seqInts(from, to int) []int {
	out := make([]int, 0, to-from)
	for n := from; n < to; n++ {
		out = append(out, n)
	}
	return out
}

// subscribe subscribes or fails the test.
func subscribe(t testing.TB, bus Bus, pattern string, opts SubscribeOptions) *collector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := bus.Subscribe(ctx, pattern, opts)
	if err != nil {
		t.Fatalf("subscribe %q: %v", pattern, err)
	}
	return collect(t, sub)
}

// streamEntries reads the event IDs and _n of the records in a channel's
// stream, batches expanded.
func streamEntries(t testing.TB, c *redis.Client, key string) (ids []string, ns []int) {
	t.Helper()
	msgs, err := c.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatalf("xrange %s: %v", key, err)
	}
	channel := key[strings.LastIndexByte(key, ':')+1:]
	var es []historyEntry
	for _, m := range msgs {
		es = appendEntryRecords(es, channel, m, position{})
	}
	for _, e := range es {
		var v struct {
			N int `json:"_n"`
		}
		if err := json.Unmarshal(e.rec.JSON, &v); err != nil {
			t.Fatalf("stream record %s: %v", e.rec.ID, err)
		}
		ids = append(ids, e.rec.ID)
		ns = append(ns, v.N)
	}
	return ids, ns
}

// streamLen returns the number of records in a channel's stream.
func streamLen(t testing.TB, c *redis.Client, key string) int {
	t.Helper()
	ids, _ := streamEntries(t, c, key)
	return len(ids)
}

// activeBus waits until bus's pub/sub connection is in place, so records
// published from now on reach its subscribers live.
func activeBus(t testing.TB, bus *Redis) {
	t.Helper()
	testsupport.Eventually(t, 10*time.Second, func() bool {
		if bus.src == nil {
			return true
		}
		for _, sh := range bus.src.shards {
			select {
			case <-sh.found:
			default:
				return false
			}
			for _, rd := range sh.snapshotReaders() {
				select {
				case <-rd.activeChan():
				default:
					return false
				}
			}
		}
		return true
	}, "redis bus pub/sub never subscribed")
}

func TestRedisRoundTrip(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, met := newRedisBus(t, srv.URL(), RoleAll, nil)
	activeBus(t, bus)
	c := subscribe(t, bus, "*", SubscribeOptions{})

	publishRange(t, bus, "web", 0, 3)
	got := c.waitRecords(t, 3, 10*time.Second)
	ids, ns := streamEntries(t, srv.Client(t), "logviewer:stream:web")
	if !slices.Equal(ns, []int{0, 1, 2}) {
		t.Fatalf("stream holds %v, want [0 1 2]", ns)
	}
	for i, r := range got {
		if r.ID != ids[i] || r.Channel != "web" || r.N != i {
			t.Errorf("record %d: id %q channel %q n %d; want id %q (the stream's) channel web n %d", i, r.ID, r.Channel, r.N, ids[i], i)
		}
		if r.JSON["_event_id"] != r.ID || r.JSON["_channel"] != "web" || r.JSON["short_message"] != "line "+strconv.Itoa(i) || r.JSON["version"] != "1.1" {
			t.Errorf("record %d JSON: %v", i, r.JSON)
		}
	}
	first := got[0]
	if raw := c.snapshot()[0].Record.JSON; !strings.HasPrefix(string(raw), `{"_event_id":"`+first.ID+`","_channel":"web",`) {
		t.Errorf("record JSON does not start with _event_id and _channel: %s", raw)
	}

	if v := readCounter(t, met.Published); v != 3 {
		t.Errorf("published metric %v, want 3", v)
	}
	if err := bus.Health(context.Background()); err != nil {
		t.Errorf("health: %v", err)
	}
	ch, err := bus.Channels(context.Background())
	if err != nil || len(ch) != 1 || ch[0].Name != "web" || ch[0].Count != 3 {
		t.Errorf("channels %+v, %v; want web with count 3", ch, err)
	}
}

func TestRedisIngestAndStreamNodes(t *testing.T) {
	srv := testsupport.StartRedis(t)
	ingest, _ := newRedisBus(t, srv.URL(), RoleIngest, func(c *RedisConfig) { c.ChannelPrefix = "lv:" })
	stream, _ := newRedisBus(t, srv.URL(), RoleStream, func(c *RedisConfig) { c.ChannelPrefix = "lv:" })
	activeBus(t, stream)
	c := subscribe(t, stream, "app*", SubscribeOptions{})

	publishRange(t, ingest, "app1", 0, 5)
	publishRange(t, ingest, "other", 5, 6)
	publishRange(t, ingest, "app2", 6, 8)
	got := c.waitRecords(t, 7, 10*time.Second)
	if want := []int{0, 1, 2, 3, 4, 6, 7}; !slices.Equal(numbers(got), want) {
		t.Fatalf("stream node got %v, want %v", numbers(got), want)
	}
	ids1, _ := streamEntries(t, srv.Client(t), "lv:logviewer:stream:app1")
	ids2, _ := streamEntries(t, srv.Client(t), "lv:logviewer:stream:app2")
	if want := append(ids1, ids2...); !slices.Equal(ids(got), want) {
		t.Errorf("IDs %v, want the stream IDs %v", ids(got), want)
	}
	// IDs increase across channels, in publish order.
	for i := 1; i < len(got); i++ {
		a, _ := parseStreamID(got[i-1].ID)
		b, _ := parseStreamID(got[i].ID)
		if !a.less(b) {
			t.Errorf("ID %s after %s", got[i].ID, got[i-1].ID)
		}
	}

	ch, err := stream.Channels(context.Background())
	if err != nil {
		t.Fatalf("channels: %v", err)
	}
	var names []string
	for _, c := range ch {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"app1", "app2", "other"}) {
		t.Errorf("channels %v: want app1 app2 other (other has no subscriber)", names)
	}

	if _, err := ingest.Subscribe(context.Background(), "*", SubscribeOptions{}); err == nil {
		t.Error("ingest role: Subscribe worked")
	}
	if err := stream.Publish(context.Background(), "x", numbered(0)); err == nil {
		t.Error("stream role: Publish worked")
	}
}

func ids(rs []gotRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestRedisResumeOnAnotherNode(t *testing.T) {
	srv := testsupport.StartRedis(t)
	ingest, _ := newRedisBus(t, srv.URL(), RoleIngest, nil)
	node1, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
	node2, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
	activeBus(t, node1)
	activeBus(t, node2)
	c1 := subscribe(t, node1, "*", SubscribeOptions{})

	channels := []string{"a", "b", "c"}
	n := 0
	for ; n < 60; n++ {
		publishRange(t, ingest, channels[n%3], n, n+1)
	}
	got := c1.waitRecords(t, 60, 10*time.Second)
	last := got[29] // the client read 30 records, then its connection broke

	// Lines keep flowing while the client resumes on node 2.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := 60; m < 400; m++ {
			publishRange(t, ingest, channels[m%3], m, m+1)
		}
	}()
	c2 := subscribe(t, node2, "*", SubscribeOptions{Since: last.ID})
	wg.Wait()
	got2 := c2.waitRecords(t, 400-30, 10*time.Second)
	if want := seqInts(30, 400); !slices.Equal(numbers(got2), want) {
		t.Fatalf("resumed after record 29: got %v, want 30..399 once each", numbers(got2))
	}
	for _, e := range c2.snapshot() {
		if e.Kind != EventRecord {
			t.Errorf("unexpected event %+v", e)
		}
	}

	// A resume on one channel gets only that channel's later records.
	c3 := subscribe(t, node2, "b", SubscribeOptions{Since: last.ID})
	var want []int
	for m := 30; m < 400; m++ {
		if m%3 == 1 {
			want = append(want, m)
		}
	}
	if got3 := c3.waitRecords(t, len(want), 10*time.Second); !slices.Equal(numbers(got3), want) {
		t.Errorf("resume on b: got %v, want %v", numbers(got3), want)
	}
}

func TestRedisTail(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, _ := newRedisBus(t, srv.URL(), RoleAll, nil)
	activeBus(t, bus)
	for n := 0; n < 20; n++ {
		publishRange(t, bus, []string{"web-1", "web-2", "db"}[n%3], n, n+1)
	}
	probe := subscribe(t, bus, "*", SubscribeOptions{Tail: 100})
	probe.waitRecords(t, 20, 10*time.Second)

	tests := []struct {
		name    string
		pattern string
		tail    int
		want    []int
	}{
		{name: "all channels", pattern: "*", tail: 5, want: seqInts(15, 20)},
		{name: "more than kept", pattern: "*", tail: 50, want: seqInts(0, 20)},
		{name: "glob", pattern: "web-*", tail: 4, want: []int{15, 16, 18, 19}},
		{name: "one channel", pattern: "db", tail: 3, want: []int{11, 14, 17}},
		{name: "unknown channel", pattern: "nope", tail: 3, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := subscribe(t, bus, tc.pattern, SubscribeOptions{Tail: tc.tail})
			got := c.waitRecords(t, len(tc.want), 10*time.Second)
			if !slices.Equal(numbers(got), tc.want) {
				t.Fatalf("tail %d of %s: got %v, want %v", tc.tail, tc.pattern, numbers(got), tc.want)
			}
		})
	}

	// Live records follow the tail without a duplicate.
	c := subscribe(t, bus, "web-*", SubscribeOptions{Tail: 2})
	publishRange(t, bus, "web-1", 20, 22)
	publishRange(t, bus, "db", 22, 23)
	publishRange(t, bus, "web-2", 23, 24)
	if got := c.waitRecords(t, 5, 10*time.Second); !slices.Equal(numbers(got), []int{18, 19, 20, 21, 23}) {
		t.Errorf("tail then live: got %v", numbers(got))
	}
}

func TestRedisGapAfterTrim(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, _ := newRedisBus(t, srv.URL(), RoleAll, func(c *RedisConfig) { c.History = 10 })
	activeBus(t, bus)
	all := subscribe(t, bus, "*", SubscribeOptions{})
	publishRange(t, bus, "t", 0, 1000)
	publishRange(t, bus, "u", 1000, 1001)
	got := all.waitRecords(t, 1001, 10*time.Second)
	_, kept := streamEntries(t, srv.Client(t), "logviewer:stream:t")
	if len(kept) == 0 || len(kept) >= 1000 {
		t.Fatalf("stream t holds %d entries: MAXLEN ~ did not trim", len(kept))
	}

	c := subscribe(t, bus, "*", SubscribeOptions{Since: got[5].ID})
	want := append(slices.Clone(kept), 1000)
	recs := c.waitRecords(t, len(want), 10*time.Second)
	evs := c.snapshot()
	if evs[0].Kind != EventGap {
		t.Errorf("first event %+v, want a gap notice", evs[0])
	}
	if !slices.Equal(numbers(recs), want) {
		t.Errorf("after the gap: got %v, want the %d kept entries of t then u's", numbers(recs), len(kept))
	}

	// Within what is kept: no gap.
	c2 := subscribe(t, bus, "t", SubscribeOptions{Since: got[990].ID})
	if recs := c2.waitRecords(t, 9, 10*time.Second); !slices.Equal(numbers(recs), seqInts(991, 1000)) {
		t.Errorf("resume within history: %v", numbers(recs))
	}
	for _, e := range c2.snapshot() {
		if e.Kind == EventGap {
			t.Error("gap notice for a resume within history")
		}
	}

	// An ID from an earlier life of Redis (before its epoch), or no ID at
	// all, is a gap too.
	for _, since := range []string{"1-0", "not-an-id"} {
		c := subscribe(t, bus, "u", SubscribeOptions{Since: since})
		recs := c.waitRecords(t, 1, 10*time.Second)
		if evs := c.snapshot(); evs[0].Kind != EventGap || !slices.Equal(numbers(recs), []int{1000}) {
			t.Errorf("since %q: events %v, want gap then 1000", since, numbers(recs))
		}
	}
}

func TestRedisPlainPublish(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
	activeBus(t, bus)
	c := subscribe(t, bus, "*", SubscribeOptions{})
	rc := srv.Client(t)
	// What rsyslog's omhiredis publishes: the template's GELF, a newline.
	for _, p := range []string{
		`{"_app_name":"10.0.0.5","host":"lr","short_message":"from rsyslog","timestamp":"1700000000","_group":"lr"}` + "\n",
		"not json \"at\" all\x01",
		`{"broken":`,
	} {
		if err := rc.Publish(context.Background(), "10.0.0.5", p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := c.waitRecords(t, 3, 10*time.Second)
	want := []string{"from rsyslog", "not json \"at\" all\x01", `{"broken":`}
	for i, r := range got {
		if r.ID != "" || r.Channel != "10.0.0.5" || r.JSON["_channel"] != "10.0.0.5" || r.JSON["_event_id"] != "" {
			t.Errorf("record %d: id %q channel %q JSON %v", i, r.ID, r.Channel, r.JSON)
		}
		if r.JSON["short_message"] != want[i] {
			t.Errorf("record %d short_message %q, want %q", i, r.JSON["short_message"], want[i])
		}
	}
	if got[0].JSON["_app_name"] != "10.0.0.5" {
		t.Errorf("rsyslog fields lost: %v", got[0].JSON)
	}
	ch, err := bus.Channels(context.Background())
	if err != nil || len(ch) != 1 || ch[0].Name != "10.0.0.5" || ch[0].Count != 3 {
		t.Errorf("channels %+v, %v: want 10.0.0.5 seen 3 times", ch, err)
	}
}

func TestRedisOutage(t *testing.T) {
	srv := testsupport.StartRedis(t)
	ingest, met := newRedisBus(t, srv.URL(), RoleIngest, nil)
	stream, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
	activeBus(t, stream)
	c := subscribe(t, stream, "*", SubscribeOptions{})

	var published atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := ingest.Publish(context.Background(), "app", numbered(n)); err != nil {
				t.Errorf("publish %d: %v", n, err)
				return
			}
			published.Add(1)
			time.Sleep(time.Millisecond) // a steady flow of lines, not a flood
		}
	}()
	testsupport.Eventually(t, 10*time.Second, func() bool { return published.Load() > 200 }, "publisher stuck")
	srv.Stop(t) // SIGKILL: no persistence, what Redis held is gone
	stoppedAt := int(published.Load())
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return ingest.Health(context.Background()) != nil && stream.Health(context.Background()) != nil
	}, "health not degraded while Redis is down")
	if err := ingest.Health(context.Background()); !strings.Contains(err.Error(), "redis unreachable") {
		t.Errorf("health while down: %v", err)
	}
	atDown := int(published.Load())
	time.Sleep(5 * time.Second) // the outage itself: lines keep coming meanwhile
	srv.Start(t)
	testsupport.Eventually(t, 20*time.Second, func() bool {
		return ingest.Health(context.Background()) == nil && stream.Health(context.Background()) == nil
	}, "health not back after Redis restarted: %v", func() any { return ingest.Health(context.Background()) })
	close(stop)
	<-done
	total := int(published.Load())

	// Everything accepted while Redis was down is in the new Redis.
	testsupport.Eventually(t, 20*time.Second, func() bool {
		n := streamLen(t, srv.Client(t), "logviewer:stream:app")
		return n >= total-atDown
	}, "stream shorter than the records published since the outage")
	_, ns := streamEntries(t, srv.Client(t), "logviewer:stream:app")
	if ns[len(ns)-1] != total-1 || !slices.Equal(ns, seqInts(ns[0], total)) || ns[0] > atDown {
		t.Errorf("stream after restart holds %d..%d (%d entries, gaps or repeats?); want %d..%d at least",
			ns[0], ns[len(ns)-1], len(ns), atDown, total-1)
	}
	// The subscriber got every record accepted while Redis was down, once,
	// in order; only what the killed Redis had acknowledged may be missing,
	// announced by a gap notice.
	testsupport.Eventually(t, 20*time.Second, func() bool {
		got := records(t, c.snapshot())
		return len(got) > 0 && got[len(got)-1].N >= total-1
	}, "subscriber did not get the last record %d", total-1)
	var seq []int
	for _, e := range c.snapshot() {
		switch e.Kind {
		case EventGap:
			seq = append(seq, testsupport.GapMark)
		case EventRecord:
			seq = append(seq, records(t, []Event{e})[0].N)
		}
	}
	if err := testsupport.CheckOutageSequence(seq, total, stoppedAt, 200); err != nil {
		t.Error(err)
	}
	if v := readCounter(t, met.Dropped.WithLabelValues(metrics.DropBusBuffer)); v != 0 {
		t.Errorf("dropped %v records within the buffer", v)
	}
}

// TestRedisUnreachableIsLogged: an idle ingest node whose Redis is down
// from the start says so once (go-redis's own dial errors are debug
// messages, see cmd/logviewer), not at every probe, and says when Redis is
// back.
func TestRedisUnreachableIsLogged(t *testing.T) {
	srv := testsupport.StartRedis(t)
	srv.Stop(t)
	var logged testsupport.LockedBuffer
	bus, _ := newRedisBus(t, srv.URL(), RoleIngest, func(c *RedisConfig) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logged, t.Output()), nil))
	})
	const down = `level=WARN msg="redis unreachable; checking every second"`
	testsupport.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logged.String(), down) },
		"no warning while Redis is down: %q", func() any { return logged.String() })
	testsupport.Eventually(t, 10*time.Second, func() bool { return bus.Health(context.Background()) != nil },
		"healthy without Redis")
	time.Sleep(2500 * time.Millisecond) // two more probes fail meanwhile
	if n := strings.Count(logged.String(), down); n != 1 {
		t.Errorf("warned %d times during one outage, want once:\n%s", n, logged.String())
	}
	srv.Start(t)
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(logged.String(), `level=INFO msg="redis reachable again"`)
	}, "Redis back, not logged: %q", func() any { return logged.String() })
	if err := bus.Health(context.Background()); err != nil {
		t.Errorf("health with Redis back: %v", err)
	}
}

func TestRedisBufferOverflowDropsOldest(t *testing.T) {
	srv := testsupport.StartRedis(t)
	srv.Stop(t) // down from the start: NewRedis must not care
	const total = 1000
	rec := len(numbered(500)) + recordOverhead
	bus, met := newRedisBus(t, srv.URL(), RoleIngest, func(c *RedisConfig) { c.BufferBytes = 100 * rec })
	publishRange(t, bus, "app", 0, total)
	testsupport.Eventually(t, 10*time.Second, func() bool { return bus.Health(context.Background()) != nil },
		"healthy without Redis")
	// The batch the writer tried goes back in the queue once its attempt
	// fails, and the oldest beyond the buffer are dropped then: wait for the
	// count to reach what the buffer's room implies.
	var dropped float64
	testsupport.Eventually(t, 10*time.Second, func() bool {
		dropped = readCounter(t, met.Dropped.WithLabelValues(metrics.DropBusBuffer))
		return dropped >= total-110
	}, "dropped records while Redis was down: want about %d", total-100)
	if dropped > total-90 {
		t.Errorf("dropped %v of %d with room for about 100", dropped, total)
	}
	srv.Start(t)
	testsupport.Eventually(t, 20*time.Second, func() bool {
		n := int64(streamLen(t, srv.Client(t), "logviewer:stream:app"))
		dropped = readCounter(t, met.Dropped.WithLabelValues(metrics.DropBusBuffer))
		return n == int64(total)-int64(dropped)
	}, "buffer not delivered after Redis came")
	_, ns := streamEntries(t, srv.Client(t), "logviewer:stream:app")
	if !slices.Equal(ns, seqInts(total-len(ns), total)) {
		t.Errorf("delivered %v: want the newest %d records, the oldest dropped", ns, len(ns))
	}
}

// TestRedisSlowerThanSendersLosesNothing: with Redis reachable, a burst far
// beyond the buffer from several concurrent publishers (as several TCP
// connections are) makes Publish wait for room, slowing the senders down,
// instead of dropping records Redis would take a moment later.
func TestRedisSlowerThanSendersLosesNothing(t *testing.T) {
	srv := testsupport.StartRedis(t)
	const publishers, each = 4, 5_000
	rec := len(numbered(500)) + recordOverhead
	bus, met := newRedisBus(t, srv.URL(), RoleIngest, func(c *RedisConfig) {
		c.BufferBytes = 50 * rec
		c.History = 2 * each
	})
	testsupport.Eventually(t, 10*time.Second, func() bool { return bus.Health(context.Background()) == nil },
		"bus not healthy with Redis up")
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				if err := bus.Publish(context.Background(), fmt.Sprintf("app%d", p), numbered(n)); err != nil {
					t.Errorf("publish %d: %v", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for p := range publishers {
		key := fmt.Sprintf("logviewer:stream:app%d", p)
		testsupport.Eventually(t, 20*time.Second, func() bool {
			n := streamLen(t, srv.Client(t), key)
			return n == each
		}, "%s does not hold all %d records (dropped %v)", key, each,
			func() any { return readCounter(t, met.Dropped.WithLabelValues(metrics.DropBusBuffer)) })
		if _, ns := streamEntries(t, srv.Client(t), key); !slices.Equal(ns, seqInts(0, each)) {
			t.Fatalf("%s holds %d records, not 0..%d in order", key, len(ns), each-1)
		}
	}
	if v := readCounter(t, met.Dropped.WithLabelValues(metrics.DropBusBuffer)); v != 0 {
		t.Fatalf("dropped %v records although Redis was reachable", v)
	}
}

func TestRedisPubSubKilled(t *testing.T) {
	srv := testsupport.StartRedis(t)
	ingest, _ := newRedisBus(t, srv.URL(), RoleIngest, nil)
	stream, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
	activeBus(t, stream)
	c := subscribe(t, stream, "*", SubscribeOptions{})
	rc := srv.Client(t)

	const total = 3000
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		for n := 0; n < total; n++ {
			ch := []string{"x", "y"}[n%2]
			if err := ingest.Publish(context.Background(), ch, numbered(n)); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			if n%100 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	// What Redis does to a reader beyond client-output-buffer-limit pubsub.
	for i := 0; i < 3; i++ {
		testsupport.Eventually(t, 10*time.Second, func() bool {
			return len(records(t, c.snapshot())) > (i+1)*total/5
		}, "records stopped flowing")
		// Kill as soon as the reader is back from the previous kill.
		testsupport.Eventually(t, 10*time.Second, func() bool {
			killed, err := rc.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result()
			if err != nil {
				t.Fatalf("kill %d: client kill type pubsub: %v", i, err)
			}
			return killed > 0
		}, "kill %d: no pub/sub client to kill", i)
	}
	<-done
	got := c.waitRecords(t, total, 20*time.Second)
	if !slices.Equal(numbers(got), seqInts(0, total)) {
		t.Fatalf("after 3 pub/sub disconnects: %d records, want 0..%d once each, in order", len(got), total-1)
	}
	for _, e := range c.snapshot() {
		if e.Kind != EventRecord {
			t.Errorf("unexpected event %+v: nothing was lost", e)
		}
	}
}

func TestNewRedisConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RedisConfig
		wantErr string
	}{
		{name: "bad scheme", cfg: RedisConfig{URL: "http://x"}, wantErr: "redis url"},
		{name: "bad role", cfg: RedisConfig{URL: "redis://127.0.0.1:1", Role: "both"}, wantErr: "role"},
		{name: "down is fine", cfg: RedisConfig{URL: "redis://127.0.0.1:1/0", Role: RoleIngest}},
		{name: "tls url", cfg: RedisConfig{URL: "rediss://:pw@127.0.0.1:1/2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus, err := NewRedis(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close()
			if err := bus.Publish(context.Background(), "c", []byte("[1]")); err == nil {
				t.Error("a non-object was accepted")
			}
			if err := bus.Publish(context.Background(), "", []byte("{}")); err == nil {
				t.Error("an empty channel name was accepted")
			}
		})
	}
}

func TestRedisClose(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, _ := newRedisBus(t, srv.URL(), RoleAll, nil)
	activeBus(t, bus)
	sub, err := bus.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publishRange(t, bus, "z", 0, 100)
	bus.Close() // delivers what is queued first
	n, err := streamLen(t, srv.Client(t), "logviewer:stream:z"), error(nil)
	if n != 100 {
		t.Errorf("after Close the stream holds %d, %v; want 100", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := sub.Next(ctx, make([]Event, 0, 16))
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatalf("next after close: %v", err)
		}
	}
	if err := bus.Publish(context.Background(), "z", numbered(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after close: %v", err)
	}
}

func TestParseStreamID(t *testing.T) {
	tests := []struct {
		in   string
		want position
		ok   bool
	}{
		{"1700000000000-0", position{1700000000000, 0}, true},
		{"5-12", position{5, 12}, true},
		{"5", position{5, 0}, true},
		{"", position{}, false},
		{"5-", position{}, false},
		{"-5", position{}, false},
		{"a-1", position{}, false},
		{"1-+1", position{}, false},
		{"1-2-3", position{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseStreamID(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseStreamID(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && strings.Contains(tc.in, "-") && got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestSplitEventID(t *testing.T) {
	tests := []struct {
		name, in, id, rest string
		ok                 bool
	}{
		{name: "ours", in: `{"_event_id":"1-2","a":1}`, id: "1-2", rest: `"a":1}`, ok: true},
		{name: "empty object", in: `{"_event_id":"1-2"}`, id: "1-2", ok: true},
		{name: "rsyslog", in: `{"_app_name":"x"}`},
		{name: "truncated", in: `{"_event_id":"1-2`},
		{name: "escaped", in: `{"_event_id":"1\"-2","a":1}`},
		{name: "no dash", in: `{"_event_id":"12","a":1}`},
		{name: "two dashes", in: `{"_event_id":"1-2-3","a":1}`},
		{name: "dash last", in: `{"_event_id":"1-","a":1}`},
		{name: "dash first", in: `{"_event_id":"-1","a":1}`},
		{name: "control byte", in: "{\"_event_id\":\"1-\n\",\"a\":1}"},
		{name: "nothing after", in: `{"_event_id":"1-2"`},
		{name: "not json", in: `hello`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, rest, ok := splitEventID(tc.in)
			if id != tc.id || rest != tc.rest || ok != tc.ok {
				t.Errorf("splitEventID(%q) = %q, %q, %v", tc.in, id, rest, ok)
			}
		})
	}
}

func TestPubBufferDropsOldest(t *testing.T) {
	q := newPubBuffer(10*(4+recordOverhead), 4)
	dropped := 0
	for n := 0; n < 25; n++ {
		d, _ := q.push("c", fmt.Appendf(nil, "%04d", n))
		dropped += d
	}
	if dropped != 15 || q.len() != 10 {
		t.Fatalf("dropped %d, queued %d; want 15 and 10", dropped, q.len())
	}
	var got []string
	for b := q.take(true); b != nil; b = q.take(true) {
		for i := b.head; i < len(b.recs); i++ {
			got = append(got, string(b.data[b.recs[i].start:b.recs[i].end]))
		}
		q.release(b)
	}
	want := []string{"0015", "0016", "0017", "0018", "0019", "0020", "0021", "0022", "0023", "0024"}
	if !slices.Equal(got, want) {
		t.Errorf("kept %v, want the newest 10", got)
	}
}

// BenchmarkRedisPublish measures records per second from Publish into a real
// Redis (XADD + PUBLISH per record, in pipelined batches) until a stream
// node's PSUBSCRIBE subscriber has received them all.
func BenchmarkRedisPublish(b *testing.B) {
	srv := testsupport.StartRedis(b)
	// Publish outruns Redis here: a buffer for every record, so the figure
	// is Redis's pace, not the drop rate.
	ingest, _ := newRedisBus(b, srv.URL(), RoleIngest, func(c *RedisConfig) { c.BufferBytes = 1 << 30 })
	stream, _ := newRedisBus(b, srv.URL(), RoleStream, nil)
	activeBus(b, stream)
	sub, err := stream.Subscribe(context.Background(), "*", SubscribeOptions{QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		buf := make([]Event, 0, 1024)
		for {
			evs, err := sub.Next(ctx, buf[:0])
			if err != nil {
				return
			}
			for _, e := range evs {
				if e.Kind == EventDropped {
					got.Add(int64(e.Dropped))
				} else {
					got.Add(1)
				}
			}
		}
	}()
	gelf := []byte(`{"version":"1.1","host":"bench","short_message":"GET /api/items/42 200 1532 bytes in 0.004s","timestamp":1700000000.123,"level":6,"_app_name":"10.1.2.3","_group":"lr","_facility":"local0","_app":"web"}`)
	channels := []string{"web-1", "web-2", "web-3", "db-1"}
	b.SetBytes(int64(len(gelf)))
	rc := srv.Client(b)
	cpuBefore := redisCPUSeconds(b, rc)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := ingest.Publish(ctx, channels[i&3], gelf); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got.Load() < int64(b.N) {
		b.Fatalf("subscriber got %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	// Redis's own CPU per record: the cost that caps every ingest node
	// sharing this Redis, whatever the speed of this one.
	b.ReportMetric(1e6*(redisCPUSeconds(b, rc)-cpuBefore)/float64(b.N), "redis-µs/record")
}

// redisCPUSeconds is the CPU time redis-server has used (INFO cpu: user +
// system, main and other threads).
func redisCPUSeconds(tb testing.TB, rc *redis.Client) float64 {
	tb.Helper()
	info, err := rc.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatalf("info cpu: %v", err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("info cpu: %s: %v", line, err)
			}
			total += f
		}
	}
	return total
}

func TestRedisSequenceRecovers(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, met := newRedisBus(t, srv.URL(), RoleAll, nil)
	activeBus(t, bus)
	c := subscribe(t, bus, "*", SubscribeOptions{})
	rc := srv.Client(t)
	publishRange(t, bus, "a", 0, 2)
	c.waitRecords(t, 2, 10*time.Second)

	// The ID sequence falls behind the stream (state lost, clock back):
	// records still get IDs after the stream's last one.
	if err := rc.HSet(context.Background(), "logviewer:state", "ms", "1", "seq", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// A key of another type where a stream should be: that record is
	// dropped and counted, the others go on.
	if err := rc.Set(context.Background(), "logviewer:stream:bad", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	publishRange(t, bus, "a", 2, 3)
	publishRange(t, bus, "bad", 3, 4)
	publishRange(t, bus, "a", 4, 5)
	publishRange(t, bus, "b", 5, 6)
	got := c.waitRecords(t, 5, 10*time.Second)
	if !slices.Equal(numbers(got), []int{0, 1, 2, 4, 5}) {
		t.Fatalf("got %v, want 0 1 2 4 5", numbers(got))
	}
	for i := 1; i < len(got); i++ {
		a, _ := parseStreamID(got[i-1].ID)
		b, _ := parseStreamID(got[i].ID)
		if !a.less(b) {
			t.Errorf("ID %s after %s", got[i].ID, got[i-1].ID)
		}
	}
	if v := readCounter(t, met.Dropped.WithLabelValues(metrics.DropBusBuffer)); v != 1 {
		t.Errorf("dropped %v, want the 1 record Redis refused", v)
	}
}

func TestRedisEmptyObject(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, _ := newRedisBus(t, srv.URL(), RoleAll, nil)
	activeBus(t, bus)
	c := subscribe(t, bus, "e", SubscribeOptions{})
	for _, g := range []string{"{}", " { } ", `{"a":1}`} {
		if err := bus.Publish(context.Background(), "e", []byte(g)); err != nil {
			t.Fatal(err)
		}
	}
	got := c.waitRecords(t, 3, 10*time.Second)
	for i, r := range got {
		if r.JSON["_channel"] != "e" || r.JSON["_event_id"] != r.ID {
			t.Errorf("record %d: %v", i, r.JSON)
		}
	}
	if got[2].JSON["a"] != float64(1) {
		t.Errorf("members lost: %v", got[2].JSON)
	}
	tail := subscribe(t, bus, "e", SubscribeOptions{Tail: 3})
	if back := tail.waitRecords(t, 3, 10*time.Second); !slices.Equal(ids(back), ids(got)) {
		t.Errorf("history IDs %v, live %v", ids(back), ids(got))
	}
}

func TestRedisPrefixWithGlobCharacters(t *testing.T) {
	srv := testsupport.StartRedis(t)
	bus, _ := newRedisBus(t, srv.URL(), RoleAll, func(c *RedisConfig) { c.ChannelPrefix = "a*[x]:" })
	activeBus(t, bus)
	c := subscribe(t, bus, "*", SubscribeOptions{})
	// Only channels under the literal prefix are this bus's.
	if err := srv.Client(t).Publish(context.Background(), "abcx:other", `{"short_message":"not ours"}`).Err(); err != nil {
		t.Fatal(err)
	}
	publishRange(t, bus, "mine", 0, 1)
	got := c.waitRecords(t, 1, 10*time.Second)
	if len(got) != 1 || got[0].Channel != "mine" || got[0].N != 0 {
		t.Errorf("got %+v, want only record 0 of channel mine", got)
	}
}

// FuzzRedisPayload: whatever arrives on a channel, a stream node hands its
// clients a JSON object with the channel, and our own payloads keep their
// event ID.
func FuzzRedisPayload(f *testing.F) {
	f.Add("web-1", `{"_event_id":"1700000000000-3","short_message":"hi","level":6}`)
	f.Add("web-1", `{"_event_id":"1-0"}`)
	f.Add("10.0.0.5", `{"_app_name":"10.0.0.5","short_message":"from rsyslog"}`+"\n")
	f.Add("h\xff\"", "not json \x00 at all\r\n")
	f.Add("x", `{"_event_id":"1-2",`)
	f.Add("x", ` { "a" : [1, {"b": null}] } `)
	f.Add("0", `{"_event_id":"0"}`)
	f.Fuzz(func(t *testing.T, channel, payload string) {
		rec := payloadRecord(channel, payload)
		if rec.Channel != channel {
			t.Fatalf("channel %q, want %q", rec.Channel, channel)
		}
		if rec.ID != "" && !json.Valid([]byte(payload)) {
			return // our own payloads are trusted, not validated
		}
		var m map[string]any
		if err := json.Unmarshal(rec.JSON, &m); err != nil {
			t.Fatalf("record JSON %q of payload %q: %v", rec.JSON, payload, err)
		}
		// (A payload with members of these names of its own repeats them;
		// the last one wins when parsed.)
		own := 0 // how many "_event_id" the payload has beyond the one we put
		if rec.ID != "" {
			own = 1
		}
		if strings.Count(payload, "_event_id") == own && m["_event_id"] != rec.ID {
			t.Errorf("_event_id %v, record ID %q", m["_event_id"], rec.ID)
		}
		if !strings.Contains(payload, "_channel") && utf8.ValidString(channel) && m["_channel"] != channel {
			t.Errorf("_channel %v, want %q", m["_channel"], channel)
		}
		if rec.ID != "" {
			if _, ok := parseStreamID(rec.ID); !ok {
				t.Errorf("ID %q is no stream ID", rec.ID)
			}
		}
	})
}

// BenchmarkRedisFlush measures what one flush of n records (over 4
// channels) costs Redis: redis-µs/flush is its CPU per flush (INFO cpu),
// so what a flush costs beyond its records shows as the figure at n=1.
// A PSUBSCRIBE connection reads the notifications, as a stream node does.
func BenchmarkRedisFlush(b *testing.B) {
	gelf := []byte(`{"version":"1.1","host":"bench","short_message":"GET /api/items/42 200 1532 bytes in 0.004s","timestamp":1700000000.123,"level":6,"_app_name":"10.1.2.3","_group":"lr","_facility":"local0","_app":"web"}`)
	channels := []string{"web-1", "web-2", "web-3", "db-1"}
	for _, n := range []int{1, 32, 512} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			srv := testsupport.StartRedis(b)
			ingest, _ := newRedisBus(b, srv.URL(), RoleIngest, nil)
			w := ingest.pub.shards[0].writer
			ps := srv.Client(b).PSubscribe(context.Background(), "*")
			defer ps.Close()
			go func() {
				for range ps.Channel(redis.WithChannelSize(1 << 16)) {
				}
			}()
			batch := &pendingBatch{}
			for i := 0; i < n; i++ {
				start := len(batch.data)
				batch.data = append(batch.data, gelf...)
				batch.recs = append(batch.recs, pendingRecord{channel: channels[i%len(channels)], start: start, end: len(batch.data)})
			}
			ctx := context.Background()
			if err := w.send(ctx, batch); err != nil { // the first flush reads key types
				b.Fatal(err)
			}
			rc := srv.Client(b)
			cpuBefore := redisCPUSeconds(b, rc)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.send(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := 1e6 * (redisCPUSeconds(b, rc) - cpuBefore)
			b.ReportMetric(cpu/float64(b.N), "redis-µs/flush")
			b.ReportMetric(cpu/float64(b.N*n), "redis-µs/record")
		})
	}
}
