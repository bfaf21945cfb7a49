package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func rec(channel string, n int) Record {
	id := strconv.Itoa(n)
	return Record{Channel: channel, ID: id, JSON: []byte(`{"n":` + id + `}`)}
}

// describe turns events into short strings: "r:<ID>", "d:<n>", "gap".
func describe(evs []Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case EventRecord:
			out = append(out, "r:"+e.Record.ID)
		case EventDropped:
			out = append(out, "d:"+strconv.FormatUint(e.Dropped, 10))
		case EventGap:
			out = append(out, "gap")
		}
	}
	return out
}

func TestFanoutDelivery(t *testing.T) {
	type step = struct {
		pub  []Record
		want []string // what the subscriber reads after pub (nil: skip reading)
	}
	tests := []struct {
		name     string
		pattern  string
		backfill []Event
		queue    int
		steps    []step
		dropped  float64
	}{
		{
			name: "backfill then live", pattern: "a*", queue: 8,
			backfill: []Event{{Kind: EventGap}, {Kind: EventRecord, Record: rec("ab", 1)}},
			steps:    []step{{pub: []Record{rec("ab", 2), rec("b", 3), rec("ac", 4)}, want: []string{"gap", "r:1", "r:2", "r:4"}}},
		},
		{
			name: "drop oldest and coalesce", pattern: "*", queue: 3,
			steps: []step{
				{pub: []Record{rec("x", 1), rec("x", 2), rec("x", 3), rec("x", 4), rec("y", 5)}, want: []string{"d:2", "r:3", "r:4", "r:5"}},
				{pub: []Record{rec("x", 6)}, want: []string{"r:6"}},
				{pub: []Record{rec("x", 7), rec("x", 8), rec("x", 9), rec("x", 10)}, want: []string{"d:1", "r:8", "r:9", "r:10"}},
			},
			dropped: 3,
		},
		{
			name: "backfill is not bounded by the queue", pattern: "x", queue: 1,
			backfill: []Event{{Kind: EventRecord, Record: rec("x", 1)}, {Kind: EventRecord, Record: rec("x", 2)}},
			steps:    []step{{pub: []Record{rec("x", 3), rec("x", 4)}, want: []string{"r:1", "r:2", "d:1", "r:4"}}},
			dropped:  1,
		},
		{
			name: "queue grows past the first ring", pattern: "x", queue: 100,
			steps: []step{{pub: func() []Record {
				var rs []Record
				for i := 1; i <= 40; i++ {
					rs = append(rs, rec("x", i))
				}
				return rs
			}(), want: func() []string {
				var s []string
				for i := 1; i <= 40; i++ {
					s = append(s, "r:"+strconv.Itoa(i))
				}
				return s
			}()}},
		},
	}
	// Each case runs with the records delivered one by one, and with each
	// step's records delivered as one batch (deliverAll, as the memory
	// hub's PublishBatch does): a subscriber must not tell them apart.
	for _, tc := range tests {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batched=%v", tc.name, batched), func(t *testing.T) {
				testFanoutDelivery(t, tc.pattern, tc.backfill, tc.queue, tc.dropped, batched, tc.steps)
			})
		}
	}
}

func testFanoutDelivery(t *testing.T, pattern string, backfill []Event, queue int, dropped float64, batched bool, steps []struct {
	pub  []Record
	want []string
}) {
	m := metrics.New(prometheus.NewRegistry())
	f := newFanout(m)
	s, err := f.subscribe(pattern, slices.Clone(backfill), SubscribeOptions{QueueSize: queue}) // it takes the slice
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, st := range steps {
		if batched {
			f.deliverAll(slices.Clone(st.pub))
		} else {
			for _, r := range st.pub {
				f.deliver(r)
			}
		}
		if got := describe(readReady(t, s)); !slices.Equal(got, st.want) {
			t.Errorf("step %d: got %v, want %v", i, got, st.want)
		}
	}
	if got := droppedSlow(t, m); got != dropped {
		t.Errorf("dropped metric = %v, want %v", got, dropped)
	}
}

func TestFanoutPendingStart(t *testing.T) {
	f := newFanout(nil)
	s, err := f.subscribePending("*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 1; i <= 5; i++ {
		f.deliver(rec("c", i))
	}
	if got := readReady(t, s); len(got) != 0 {
		t.Fatalf("pending subscriber handed out %v", describe(got))
	}
	// History read 1..3; live duplicates must go, before and after start.
	skip := func(r Record) bool { n, _ := strconv.Atoi(r.ID); return n <= 3 }
	s.start([]Event{{Kind: EventRecord, Record: rec("c", 1)}, {Kind: EventRecord, Record: rec("c", 2)}, {Kind: EventRecord, Record: rec("c", 3)}}, skip)
	f.deliver(rec("c", 3)) // late duplicate from pub/sub
	f.deliver(rec("c", 6))
	want := []string{"r:1", "r:2", "r:3", "r:4", "r:5", "r:6"}
	if got := describe(readReady(t, s)); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestFanoutCacheFollowsSubscriptions(t *testing.T) {
	f := newFanout(nil)
	a, _ := f.subscribe("web-*", nil, SubscribeOptions{})
	f.deliver(rec("web-1", 1)) // caches web-1 -> [a]
	f.deliver(rec("db", 2))    // caches db -> []
	b, _ := f.subscribe("*", nil, SubscribeOptions{})
	f.deliver(rec("web-1", 3))
	f.deliver(rec("db", 4))
	a.Close()
	f.deliver(rec("web-1", 5))
	if got, want := describe(readReady(t, b)), []string{"r:3", "r:4", "r:5"}; !slices.Equal(got, want) {
		t.Errorf("b got %v, want %v", got, want)
	}
	if _, err := a.Next(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed a: Next err = %v, want ErrClosed", err)
	}
	if n := f.subscriberCount(); n != 1 {
		t.Errorf("subscribers = %d, want 1", n)
	}
	b.Close()
}

func TestFanoutCloseWakesAndDrains(t *testing.T) {
	f := newFanout(nil)
	idle, _ := f.subscribe("*", nil, SubscribeOptions{})
	full, _ := f.subscribe("*", nil, SubscribeOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := idle.Next(context.Background(), nil)
		errc <- err
	}()
	f.deliver(rec("x", 1)) // may or may not reach the goroutine before close
	f.close()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("idle Next err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after close")
	}
	evs, err := full.Next(context.Background(), nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("after close: queued events %v err %v, want the one record", describe(evs), err)
	}
	if _, err := full.Next(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("drained: err = %v, want ErrClosed", err)
	}
	if _, err := f.subscribe("*", nil, SubscribeOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: err = %v, want ErrClosed", err)
	}
}

// droppedSlow reads metrics.Dropped{reason=slow_subscriber}.
func droppedSlow(t testing.TB, m *metrics.Metrics) float64 {
	t.Helper()
	return readCounter(t, m.Dropped.WithLabelValues(metrics.DropSlowSubscriber))
}

// readCounter returns the value of a counter.
func readCounter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// TestFanoutQueueBytes: a subscriber's own byte bound and the fanout's
// total budget drop the oldest records of the subscriber past them, counted,
// while a subscriber that keeps up loses nothing.
func TestFanoutQueueBytes(t *testing.T) {
	rec := func(i int) Record {
		return Record{Channel: "web-1", ID: strconv.Itoa(i), JSON: []byte(`{"short_message":"` + strings.Repeat("x", 936) + `"}`)}
	}
	size := queuedSize(&Record{JSON: rec(0).JSON})

	t.Run("per subscriber", func(t *testing.T) {
		m := metrics.New(prometheus.NewRegistry())
		f := newFanout(m)
		s, err := f.subscribe("*", nil, SubscribeOptions{QueueSize: 1000, QueueBytes: 5 * size})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			f.deliver(rec(i))
		}
		if s.n != 5 || s.bytes != 5*size || f.queued.Load() != 5*size {
			t.Fatalf("queued %d records, %d bytes (fanout %d); want 5 and %d", s.n, s.bytes, f.queued.Load(), 5*size)
		}
		if got := readCounter(t, m.Dropped.WithLabelValues(metrics.DropSlowSubscriber)); got != 15 {
			t.Fatalf("dropped %v, want 15", got)
		}
		evs, _ := s.Next(t.Context(), make([]Event, 0, 100))
		if evs[0].Kind != EventDropped || evs[0].Dropped != 15 || evs[1].Record.ID != "15" {
			t.Fatalf("first events %+v", evs[:2])
		}
		if f.queued.Load() != 0 {
			t.Fatalf("fanout still counts %d bytes after the queue was read", f.queued.Load())
		}
	})

	t.Run("total budget", func(t *testing.T) {
		f := newFanout(nil)
		f.budget = 10 * size
		slow, _ := f.subscribe("*", nil, SubscribeOptions{QueueSize: 1000})
		fast, _ := f.subscribe("*", nil, SubscribeOptions{QueueSize: 1000})
		buf := make([]Event, 0, 10)
		got := 0
		for i := range 100 {
			f.deliver(rec(i))
			evs, _ := fast.Next(t.Context(), buf[:0])
			for _, ev := range evs {
				if ev.Kind != EventRecord {
					t.Fatalf("the subscriber that keeps up got %+v", ev)
				}
				got++
			}
			if q := f.queued.Load(); q > f.budget+size {
				t.Fatalf("after %d records %d bytes queued, budget %d", i+1, q, f.budget)
			}
		}
		if got != 100 || slow.lost == 0 || slow.bytes > f.budget {
			t.Fatalf("fast got %d of 100; slow lost %d, holds %d bytes", got, slow.lost, slow.bytes)
		}
		slow.Close()
		fast.Close()
		if f.queued.Load() != 0 {
			t.Fatalf("closed subscribers still count %d bytes", f.queued.Load())
		}
	})
}

// TestFanoutBudgetSparesReaders: with the budget held by subscribers that
// stopped reading, one that is reading keeps a backlog of its own (up to
// budget/64) instead of its share of the budget, and loses nothing.
func TestFanoutBudgetSparesReaders(t *testing.T) {
	rec := Record{Channel: "web-1", JSON: []byte(`{"short_message":"` + strings.Repeat("x", 936) + `"}`)}
	size := queuedSize(&rec)
	f := newFanout(nil)
	f.budget = 64 * 100 * size // a reader may keep 100 records
	var stalled []*subscriber
	for range 200 {
		s, _ := f.subscribe("*", nil, SubscribeOptions{QueueSize: 10_000})
		s.lastTake.Store(time.Now().Add(-time.Minute).UnixNano())
		stalled = append(stalled, s)
	}
	reader, _ := f.subscribe("*", nil, SubscribeOptions{QueueSize: 10_000})
	for range 90 { // the reader falls 90 records behind, a short pause
		reader.lastTake.Store(time.Now().UnixNano())
		f.deliver(rec)
	}
	if f.queued.Load() <= f.budget-200*size {
		t.Fatalf("the budget never filled: %d of %d", f.queued.Load(), f.budget)
	}
	if reader.lost != 0 || reader.n != 90 {
		t.Fatalf("the reading subscriber lost %d and holds %d records, want 0 and 90", reader.lost, reader.n)
	}
	if stalled[0].lost == 0 {
		t.Fatalf("the stalled subscribers lost nothing while the budget was full")
	}
}

// TestFanoutStalledSubscriber: a subscriber whose queue overflows while it
// has taken nothing for stallAfter stops being queued to; what it misses is
// counted, and said in full (a dropped notice) once it reads again.
func TestFanoutStalledSubscriber(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	f := newFanout(m)
	s, _ := f.subscribe("*", nil, SubscribeOptions{QueueSize: 4})
	s.lastTake.Store(time.Now().Add(-time.Minute).UnixNano())
	for i := range 10 {
		f.deliver(Record{Channel: "app", ID: strconv.Itoa(i), JSON: []byte(`{}`)})
	}
	if !s.stalled.Load() {
		t.Fatal("the overflowing subscriber that reads nothing is not stalled")
	}
	evs, err := s.Next(t.Context(), make([]Event, 0, 16))
	if err != nil {
		t.Fatal(err)
	}
	var lost uint64
	var ids []string
	for _, ev := range evs {
		switch ev.Kind {
		case EventDropped:
			lost += ev.Dropped
		case EventRecord:
			ids = append(ids, ev.Record.ID)
		}
	}
	if lost+uint64(len(ids)) != 10 || len(ids) != 4 {
		t.Fatalf("got records %v and %d lost; want 4 queued and 6 lost, 10 in all", ids, lost)
	}
	if s.stalled.Load() {
		t.Fatal("still stalled after reading")
	}
	if got := readCounter(t, m.Dropped.WithLabelValues(metrics.DropSlowSubscriber)); got != 6 {
		t.Fatalf("dropped counter %v, want 6", got)
	}
	f.deliver(Record{Channel: "app", ID: "10", JSON: []byte(`{}`)})
	if evs, _ := s.Next(t.Context(), make([]Event, 0, 16)); len(evs) != 1 || evs[0].Record.ID != "10" {
		t.Fatalf("after reading again: %+v, want the new record queued", evs)
	}
}

// TestFanoutLostByChannelBounded: a dropped notice names at most
// MaxDropChannels channels; the records of the others are counted under "".
func TestFanoutLostByChannelBounded(t *testing.T) {
	f := newFanout(nil)
	s, _ := f.subscribe("*", nil, SubscribeOptions{QueueSize: 1})
	const channels = MaxDropChannels + 10
	for i := range channels + 1 { // the first is queued, each later one drops the one before
		f.deliver(Record{Channel: fmt.Sprintf("ch-%d", i), JSON: []byte(`{}`)})
	}
	evs, _ := s.Next(t.Context(), make([]Event, 0, 4))
	if len(evs) == 0 || evs[0].Kind != EventDropped {
		t.Fatalf("events %+v, want a dropped notice first", evs)
	}
	by := evs[0].ByChannel
	var sum uint64
	for _, n := range by {
		sum += n
	}
	if len(by) > MaxDropChannels+1 || by[""] == 0 || sum != evs[0].Dropped || sum != channels {
		t.Fatalf("dropped %d by %d channels (%d under \"\"), want %d in at most %d names",
			evs[0].Dropped, len(by), by[""], channels, MaxDropChannels+1)
	}
}

var _ ReadyNotifier = (*subscriber)(nil)

// TestFanoutNotifyReady: what NotifyReady arranges is called once by the
// first of a record, a gap, the start of a pending subscriber, the bus's
// close and the subscription's own Close, and never after StopNotify or
// when events are ready already.
func TestFanoutNotifyReady(t *testing.T) {
	tests := []struct {
		name    string
		pending bool
		wake    func(f *fanout, s *subscriber)
	}{
		{"record", false, func(f *fanout, _ *subscriber) { f.deliver(rec("a", 1)) }},
		{"gap", false, func(f *fanout, _ *subscriber) { f.markGap() }},
		{"start", true, func(_ *fanout, s *subscriber) { s.start(nil, nil) }},
		{"bus closed", false, func(f *fanout, _ *subscriber) { f.close() }},
		{"closed", false, func(_ *fanout, s *subscriber) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFanout(nil)
			var s *subscriber
			var err error
			if tt.pending {
				s, err = f.subscribePending("a", SubscribeOptions{})
			} else {
				s, err = f.subscribe("a", nil, SubscribeOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			if !s.NotifyReady(func() { calls++ }) {
				t.Fatal("NotifyReady: ready already with nothing queued")
			}
			if tt.pending {
				f.deliver(rec("a", 1)) // queued while pending: not ready yet
				if calls != 0 {
					t.Fatal("ready called for a pending subscriber")
				}
			}
			tt.wake(f, s)
			f.deliver(rec("a", 2))
			if calls != 1 {
				t.Fatalf("ready called %d times, want 1", calls)
			}
			if s.NotifyReady(func() { calls++ }) {
				t.Fatal("NotifyReady armed although Next would not wait")
			}
		})
	}
	t.Run("stop", func(t *testing.T) {
		f := newFanout(nil)
		s, err := f.subscribe("a", nil, SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		called := false
		s.NotifyReady(func() { called = true })
		s.StopNotify()
		f.deliver(rec("a", 1))
		s.Close()
		if called {
			t.Fatal("ready called after StopNotify")
		}
	})
}
