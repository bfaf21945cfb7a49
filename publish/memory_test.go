package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// newTestMemory returns a hub with its own metrics, closed on cleanup.
func newTestMemory(t testing.TB, history int) (*Memory, *metrics.Metrics) {
	t.Helper()
	met := metrics.New(prometheus.NewRegistry())
	m := NewMemory(MemoryConfig{History: history, Metrics: met})
	t.Cleanup(func() { m.Close() })
	return m, met
}

// publish publishes {"n":<seq the hub will assign>} records, one per channel
// given, in order.
func publish(t testing.TB, m *Memory, channels ...string) {
	t.Helper()
	for _, ch := range channels {
		if err := m.Publish(context.Background(), ch, []byte(`{"short_message":"x"}`)); err != nil {
			t.Fatalf("publish %s: %v", ch, err)
		}
	}
}

// formatID returns the memory hub's event ID of seq in epoch.
func formatID(epoch int64, seq uint64) string {
	return position{ms: uint64(epoch), seq: seq}.String()
}

// seqOf returns the seq of a memory hub event ID, failing on anything else.
func seqOf(t testing.TB, id string) uint64 {
	t.Helper()
	_, seq, ok := parseID(id)
	if !ok {
		t.Fatalf("bad event ID %q", id)
	}
	return seq
}

// summary turns events into "gap" (or "gap:<channels>"), "d:<n>" and
// "<channel>:<seq>".
func summary(t testing.TB, evs []Event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case EventRecord:
			out = append(out, e.Record.Channel+":"+strconv.FormatUint(seqOf(t, e.Record.ID), 10))
		case EventDropped:
			out = append(out, "d:"+strconv.FormatUint(e.Dropped, 10))
		case EventGap:
			if len(e.Channels) > 0 {
				out = append(out, "gap:"+strings.Join(e.Channels, ","))
			} else {
				out = append(out, "gap")
			}
		}
	}
	return out
}

// readReady returns the events ready now, waiting briefly for more.
func readReady(t testing.TB, s Subscription) []Event {
	t.Helper()
	var all []Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		evs, err := s.Next(ctx, make([]Event, 0, 128))
		cancel()
		all = append(all, evs...)
		if errors.Is(err, context.DeadlineExceeded) {
			return all
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
	}
}

func TestMemoryIDsAndJSON(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gelf := []byte(`{"version":"1.1","short_message":"hello"}`)
	for _, ch := range []string{"b", "a", "b", "c"} {
		if err := m.Publish(context.Background(), ch, gelf); err != nil {
			t.Fatal(err)
		}
	}
	gelf[2] = 'X' // the hub must have copied it
	evs := readReady(t, s)
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4", len(evs))
	}
	for i, e := range evs {
		epoch, seq, ok := parseID(e.Record.ID)
		if !ok || epoch != m.epoch || seq != uint64(i+1) {
			t.Errorf("record %d: ID %q, want %d-%d", i, e.Record.ID, m.epoch, i+1)
		}
		var obj map[string]any
		if err := json.Unmarshal(e.Record.JSON, &obj); err != nil {
			t.Fatalf("record %d: invalid JSON %s: %v", i, e.Record.JSON, err)
		}
		if obj["_event_id"] != e.Record.ID || obj["_channel"] != e.Record.Channel || obj["version"] != "1.1" {
			t.Errorf("record %d: JSON %s does not carry its ID and channel", i, e.Record.JSON)
		}
	}
}

func TestMemoryPublishRejectsNonObject(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	for _, in := range []string{"", "[]", `"x"`, "null"} {
		t.Run(strconv.Quote(in), func(t *testing.T) {
			if err := m.Publish(context.Background(), "a", []byte(in)); err == nil {
				t.Errorf("Publish(%q) = nil, want an error", in)
			}
		})
	}
}

func TestMemoryGlobSubscriptions(t *testing.T) {
	published := []string{"web-1", "web-2", "db", "web-10", "cache:1"}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"*", []string{"web-1:1", "web-2:2", "db:3", "web-10:4", "cache:1:5"}},
		{"web-*", []string{"web-1:1", "web-2:2", "web-10:4"}},
		{"web-?", []string{"web-1:1", "web-2:2"}},
		{"db", []string{"db:3"}},
		{"[cd]*", []string{"db:3", "cache:1:5"}},
		{"nothing", nil},
	}
	m, _ := newTestMemory(t, 10)
	subs := make([]Subscription, len(tests))
	for i, tc := range tests {
		s, err := m.Subscribe(context.Background(), tc.pattern, SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}
	publish(t, m, published...)
	for i, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			if got := summary(t, readReady(t, subs[i])); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMemoryTail(t *testing.T) {
	// seqs: a:1 b:2 a:3 c:4 b:5 a:6 a:7 c:8
	published := []string{"a", "b", "a", "c", "b", "a", "a", "c"}
	tests := []struct {
		name    string
		history int
		pattern string
		tail    int
		want    []string
	}{
		{"across channels", 10, "*", 4, []string{"b:5", "a:6", "a:7", "c:8"}},
		{"one channel", 10, "a", 2, []string{"a:6", "a:7"}},
		{"more than kept", 10, "[bc]", 100, []string{"b:2", "c:4", "b:5", "c:8"}},
		{"limited by history", 2, "*", 100, []string{"b:2", "c:4", "b:5", "a:6", "a:7", "c:8"}},
		{"no tail", 10, "*", 0, nil},
		{"no match", 10, "z*", 5, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestMemory(t, tc.history)
			publish(t, m, published...)
			s, err := m.Subscribe(context.Background(), tc.pattern, SubscribeOptions{Tail: tc.tail})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(t, readReady(t, s)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMemorySince(t *testing.T) {
	// seqs: a:1 b:2 a:3 a:4 b:5 a:6
	published := []string{"a", "b", "a", "a", "b", "a"}
	tests := []struct {
		name    string
		history int
		pattern string
		since   func(m *Memory) string
		want    []string
	}{
		{"mid stream", 10, "*", func(m *Memory) string { return formatID(m.epoch, 3) }, []string{"a:4", "b:5", "a:6"}},
		{"one channel", 10, "b", func(m *Memory) string { return formatID(m.epoch, 1) }, []string{"b:2", "b:5"}},
		{"up to date", 10, "*", func(m *Memory) string { return formatID(m.epoch, 6) }, nil},
		{"from zero", 10, "a", func(m *Memory) string { return formatID(m.epoch, 0) }, []string{"a:1", "a:3", "a:4", "a:6"}},
		{"foreign epoch", 10, "b", func(m *Memory) string { return formatID(m.epoch-1, 3) }, []string{"gap", "b:2", "b:5"}},
		{"malformed", 10, "b", func(*Memory) string { return "yesterday" }, []string{"gap", "b:2", "b:5"}},
		{"evicted", 2, "a", func(m *Memory) string { return formatID(m.epoch, 1) }, []string{"gap:a", "a:4", "a:6"}},
		{"evicted before since", 2, "a", func(m *Memory) string { return formatID(m.epoch, 3) }, []string{"a:4", "a:6"}},
		{"evicted in one matched channel", 2, "*", func(m *Memory) string { return formatID(m.epoch, 2) }, []string{"gap:a", "a:4", "b:5", "a:6"}},
		{"evicted in two matched channels", 1, "*", func(m *Memory) string { return formatID(m.epoch, 1) }, []string{"gap:a,b", "b:5", "a:6"}},
		{"no history kept", 0, "*", func(m *Memory) string { return formatID(m.epoch, 5) }, []string{"gap:a"}},
		{"no history, up to date", 0, "*", func(m *Memory) string { return formatID(m.epoch, 6) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestMemory(t, tc.history)
			publish(t, m, published...)
			s, err := m.Subscribe(context.Background(), tc.pattern, SubscribeOptions{Since: tc.since(m), Tail: 1})
			if err != nil {
				t.Fatal(err)
			}
			publish(t, m, "a") // live: seq 7
			want := tc.want
			if glob.Match(tc.pattern, "a") {
				want = append(append([]string(nil), want...), "a:7")
			}
			if got := summary(t, readReady(t, s)); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestMemoryJoinUnderLoad subscribes while another goroutine publishes
// without pause, and checks the subscriber gets every seq from its start
// point on exactly once and in order: no gap, no duplicate between history
// and live.
func TestMemoryJoinUnderLoad(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(m *Memory, seq uint64) SubscribeOptions
		first func(seq uint64) uint64 // first seq expected, given the hub's seq at resume
	}{
		{"since", func(m *Memory, seq uint64) SubscribeOptions {
			return SubscribeOptions{Since: formatID(m.epoch, seq/2)}
		}, nil},
		{"tail", func(*Memory, uint64) SubscribeOptions { return SubscribeOptions{Tail: 50} }, nil},
		{"live only", func(*Memory, uint64) SubscribeOptions { return SubscribeOptions{} }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const total = 20000
			m, _ := newTestMemory(t, total)
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				chans := []string{"a", "b", "c"}
				for i := 0; i < total && !stop.Load(); i++ {
					if err := m.Publish(context.Background(), chans[i%3], []byte(`{}`)); err != nil {
						t.Errorf("publish: %v", err)
						return
					}
				}
			}()
			t.Cleanup(func() { stop.Store(true); wg.Wait() })
			waitSeq := func(n uint64) uint64 {
				var seq uint64
				deadline := time.Now().Add(10 * time.Second)
				for {
					m.mu.Lock()
					seq = m.seq
					m.mu.Unlock()
					if seq >= n || time.Now().After(deadline) {
						return seq
					}
					time.Sleep(time.Millisecond)
				}
			}
			at := waitSeq(1000)
			if at < 1000 {
				t.Fatalf("publisher stuck at seq %d", at)
			}
			opts := tc.opts(m, at)
			opts.QueueSize = total
			s, err := m.Subscribe(context.Background(), "*", opts)
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			var n int
			buf := make([]Event, 0, 256)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for last < total {
				evs, err := s.Next(ctx, buf[:0])
				if err != nil {
					t.Fatalf("after seq %d (%d records): %v", last, n, err)
				}
				for _, e := range evs {
					if e.Kind != EventRecord {
						t.Fatalf("after seq %d: unexpected event kind %d", last, e.Kind)
					}
					seq := seqOf(t, e.Record.ID)
					switch {
					case n == 0 && tc.name == "since" && seq != at/2+1:
						t.Fatalf("first seq %d, want %d", seq, at/2+1)
					case n == 0 && tc.name == "tail" && seq+49 < at:
						t.Fatalf("first seq %d is before the tail at %d", seq, at)
					case n > 0 && seq != last+1:
						t.Fatalf("seq %d follows %d", seq, last)
					}
					last = seq
					n++
				}
			}
		})
	}
}

func TestMemoryDropOldest(t *testing.T) {
	tests := []struct {
		name      string
		queue     int
		tail      int
		before    int // published before subscribing
		after     int // published after, unread
		want      []string
		wantDrops float64
	}{
		{"queue of 10", 10, 0, 0, 25, append([]string{"d:15"}, seqRange("x", 16, 25)...), 15},
		{"exactly full", 10, 0, 0, 10, seqRange("x", 1, 10), 0},
		{"one over", 10, 0, 0, 11, append([]string{"d:1"}, seqRange("x", 2, 11)...), 1},
		{"backfill kept in full", 3, 5, 5, 7, append(append(seqRange("x", 1, 5), "d:4"), seqRange("x", 10, 12)...), 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, met := newTestMemory(t, 100)
			for i := 0; i < tc.before; i++ {
				publish(t, m, "x")
			}
			s, err := m.Subscribe(context.Background(), "x", SubscribeOptions{QueueSize: tc.queue, Tail: tc.tail})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.after; i++ {
				publish(t, m, "x")
			}
			if got := summary(t, readReady(t, s)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if got := droppedSlow(t, met); got != tc.wantDrops {
				t.Errorf("dropped metric %v, want %v", got, tc.wantDrops)
			}
			publish(t, m, "x")
			next := fmt.Sprintf("x:%d", tc.before+tc.after+1)
			if got := summary(t, readReady(t, s)); !slices.Equal(got, []string{next}) {
				t.Errorf("after draining: got %v, want [%s]", got, next)
			}
		})
	}
}

func seqRange(channel string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s:%d", channel, i))
	}
	return out
}

// TestMemorySlowSubscriber checks that a subscriber that never reads blocks
// neither Publish nor another subscriber, and is told exactly what it lost.
func TestMemorySlowSubscriber(t *testing.T) {
	const total, queue = 20000, 4
	m, met := newTestMemory(t, 10)
	idle, err := m.Subscribe(context.Background(), "*", SubscribeOptions{QueueSize: queue})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := m.Subscribe(context.Background(), "*", SubscribeOptions{QueueSize: total})
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() {
		for i := 0; i < total; i++ {
			if err := m.Publish(context.Background(), "x", []byte(`{}`)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for got < total {
		evs, err := reader.Next(ctx, make([]Event, 0, 512))
		if err != nil {
			t.Fatalf("reader after %d records: %v", got, err)
		}
		for _, e := range evs {
			if e.Kind != EventRecord {
				t.Fatalf("reader got event kind %d after %d records", e.Kind, got)
			}
			got++
		}
	}
	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Publish blocked")
	}
	// The idle subscriber keeps the newest records, or, when publishing
	// took longer than stallAfter (a busy machine), the ones queued when it
	// stalled: later records are only counted. Either way it is told every
	// record it lost, then gets queue records in order.
	kept := summary(t, readReady(t, idle))
	if len(kept) != queue+1 || kept[0] != fmt.Sprintf("d:%d", total-queue) {
		t.Fatalf("idle subscriber got %v, want d:%d then %d records", kept, total-queue, queue)
	}
	first, err := strconv.Atoi(strings.TrimPrefix(kept[1], "x:"))
	if err != nil {
		t.Fatalf("idle subscriber got %v", kept)
	}
	if want := seqRange("x", first, first+queue-1); !slices.Equal(kept[1:], want) || first+queue-1 > total {
		t.Errorf("idle subscriber got %v, want %d records in a row after the drop notice", kept, queue)
	}
	if got := droppedSlow(t, met); got != total-queue {
		t.Errorf("dropped metric %v, want %d", got, total-queue)
	}
}

func TestMemoryClose(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	waiting, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = waiting.Next(context.Background(), nil)
		}
		ended <- err
	}()
	publish(t, m, "x")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("waiting subscription ended with %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting subscription did not end on Close")
	}
	evs, err := queued.Next(context.Background(), nil)
	if err != nil || len(evs) != 1 {
		t.Errorf("queued record after Close: %v, %v", summary(t, evs), err)
	}
	if _, err := queued.Next(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("drained subscription: %v, want ErrClosed", err)
	}
	if err := m.Publish(context.Background(), "x", []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := m.Subscribe(context.Background(), "*", SubscribeOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
}

func TestMemorySubscriptionClose(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, m, "x")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v, want ErrClosed", err)
	}
	if n := m.fan.subscriberCount(); n != 0 {
		t.Errorf("%d subscribers left after Close", n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	publish(t, m, "x")
}

func TestMemoryNextContext(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context: %v", err)
	}
	publish(t, m, "x")
	if got := summary(t, readReady(t, s)); !slices.Equal(got, []string{"x:1"}) {
		t.Errorf("after a cancelled Next: got %v", got)
	}
	if _, err := m.Subscribe(ctx, "*", SubscribeOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context: %v", err)
	}
}

func TestMemoryNextBatch(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, m, "a", "b", "c", "d", "e")
	tests := []struct {
		name string
		buf  []Event
		want []string
	}{
		{"room for two", make([]Event, 0, 2), []string{"a:1", "b:2"}},
		{"full buffer still gets one", make([]Event, 1), []string{"", "c:3"}},
		{"room for all", make([]Event, 0, 10), []string{"d:4", "e:5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := s.Next(context.Background(), tc.buf)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				if e.Record.ID == "" {
					got = append(got, "")
					continue
				}
				got = append(got, summary(t, []Event{e})...)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMemoryChannels(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	base := time.Unix(1_700_000_000, 0)
	clock := base
	m.now = func() time.Time { return clock }
	// web: 30 records over seconds 0..2; db: one at second 0.
	for s := 0; s < 3; s++ {
		clock = base.Add(time.Duration(s) * time.Second)
		for i := 0; i < 10; i++ {
			publish(t, m, "web")
		}
		if s == 0 {
			publish(t, m, "db")
		}
	}
	tests := []struct {
		name string
		at   time.Duration
		want []ChannelInfo
	}{
		{"during the last second", 2*time.Second + 500*time.Millisecond, []ChannelInfo{
			{Name: "db", Count: 1, LastSeen: base, Rate: 0.5},
			{Name: "web", Count: 30, LastSeen: base.Add(2 * time.Second), Rate: 10},
		}},
		{"window full", 10 * time.Second, []ChannelInfo{
			{Name: "db", Count: 1, LastSeen: base, Rate: 0.1},
			{Name: "web", Count: 30, LastSeen: base.Add(2 * time.Second), Rate: 3},
		}},
		{"window past", 20 * time.Second, []ChannelInfo{
			{Name: "db", Count: 1, LastSeen: base, Rate: 0},
			{Name: "web", Count: 30, LastSeen: base.Add(2 * time.Second), Rate: 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock = base.Add(tc.at)
			got, err := m.Channels(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || got[i].Count != tc.want[i].Count ||
					!got[i].LastSeen.Equal(tc.want[i].LastSeen) || got[i].Rate != tc.want[i].Rate {
					t.Errorf("channel %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	if err := m.Health(context.Background()); err != nil {
		t.Errorf("Health: %v", err)
	}
}

// TestMemoryPublishBatch: a batch is published in order, as one by one; a
// record that is not an object, or is for a channel past MaxChannels, is
// left out and reported, and the others go through.
func TestMemoryPublishBatch(t *testing.T) {
	met := metrics.New(prometheus.NewRegistry())
	m := NewMemory(MemoryConfig{History: 10, MaxChannels: 2, Metrics: met})
	t.Cleanup(func() { m.Close() })
	s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch := []struct{ channel, gelf string }{
		{"a", `{"n":1}`}, {"b", `{"n":2}`}, {"a", `[3]`}, {"c", `{"n":4}`}, {"b", `{"n":5}`},
	}
	err = m.PublishBatch(context.Background(), func(yield func(string, []byte) bool) {
		for _, r := range batch {
			if !yield(r.channel, []byte(r.gelf)) {
				return
			}
		}
	})
	if !errors.Is(err, ErrTooManyChannels) || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("error %v, want the non-object and the channel past the bound", err)
	}
	if got, want := summary(t, readReady(t, s)), []string{"a:1", "b:2", "b:3"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if got := readCounter(t, met.Published); got != 3 {
		t.Errorf("published metric %v, want 3", got)
	}
	m.Close()
	if err := m.PublishBatch(context.Background(), func(func(string, []byte) bool) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestMemoryPublishBatchChunks: the records of a run of one channel share
// an allocation, an eighth of the history at most, each cut to its own
// length so that no record can reach into the next; every record reads as
// if it had been published alone, and the hub keeps no reference to the
// caller's buffers.
func TestMemoryPublishBatchChunks(t *testing.T) {
	m, _ := newTestMemory(t, 64)
	if got := m.chunkRecords(); got != 8 {
		t.Fatalf("chunkRecords with a history of 64: %d, want 8", got)
	}
	// Channels holding records already: a chunk takes an eighth of that.
	big := []byte(`{"pad":"` + strings.Repeat("x", 400) + `"}`)
	for range 64 {
		for _, ch := range []string{"a", "b"} {
			if err := m.Publish(context.Background(), ch, big); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	channels := slices.Concat(slices.Repeat([]string{"a"}, 10), slices.Repeat([]string{"b"}, 5), slices.Repeat([]string{"a"}, 5))
	var bufs [][]byte
	err = m.PublishBatch(context.Background(), func(yield func(string, []byte) bool) {
		for i, ch := range channels {
			bufs = append(bufs, fmt.Appendf(nil, `{"n":"%02d"}`, i))
			if !yield(ch, bufs[i]) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bufs {
		clear(b) // the caller's to reuse once PublishBatch returns: the hub must have copied
	}
	evs := readReady(t, s)
	if len(evs) != len(channels) {
		t.Fatalf("got %d records, want %d", len(evs), len(channels))
	}
	// Records 0-7, 8-9, 10-14 and 15-19 are runs of one channel within
	// the bound: each follows the one before in memory.
	first := map[int]bool{0: true, 8: true, 10: true, 15: true}
	for i, e := range evs {
		r := e.Record
		want := fmt.Sprintf("id: %d-%d\ndata: {\"_event_id\":\"%d-%d\",\"_channel\":%q,\"n\":\"%02d\"}\n\n",
			m.epoch, 128+i+1, m.epoch, 128+i+1, channels[i], i)
		if string(r.SSE) != want || r.Channel != channels[i] {
			t.Errorf("record %d: %q on %q, want %q on %q", i, r.SSE, r.Channel, want, channels[i])
		}
		if cap(r.SSE) != len(r.SSE) {
			t.Errorf("record %d: capacity %d past its length %d", i, cap(r.SSE), len(r.SSE))
		}
		if prev := evs[max(i-1, 0)].Record.SSE; !first[i] && unsafe.Add(unsafe.Pointer(&prev[len(prev)-1]), 1) != unsafe.Pointer(&r.SSE[0]) {
			t.Errorf("record %d does not follow record %d in memory", i, i-1)
		}
	}
	if len(m.batchIn) != 0 || slices.ContainsFunc(m.batchIn[:cap(m.batchIn)], func(in batchInput) bool { return in.rest != nil }) {
		t.Errorf("the hub still refers to the caller's buffers")
	}
	small, _ := newTestMemory(t, 15)
	if got := small.chunkRecords(); got != 1 {
		t.Errorf("chunkRecords with a history of 15: %d, want 1", got)
	}
}

// TestMemoryPublishBatchScratchBounded: a batch larger than any ingest
// hands over is published whole, and the hub does not keep its scratch.
func TestMemoryPublishBatchScratchBounded(t *testing.T) {
	m, met := newTestMemory(t, 10)
	err := m.PublishBatch(context.Background(), func(yield func(string, []byte) bool) {
		for i := range 2 * maxKeptBatch {
			if !yield("ch-"+strconv.Itoa(i%3), []byte(`{"n":1}`)) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := readCounter(t, met.Published); got != 2*maxKeptBatch {
		t.Errorf("published %v, want %d", got, 2*maxKeptBatch)
	}
	if cap(m.batch) > maxKeptBatch || cap(m.batchIn) > maxKeptBatch {
		t.Errorf("scratch kept: %d records, %d inputs", cap(m.batch), cap(m.batchIn))
	}
}

// TestPlanChunk: a chunk takes records while they fit in the budget, one
// at least however large.
func TestPlanChunk(t *testing.T) {
	run := make([]batchInput, 5)
	for i := range run {
		run[i].rest = make([]byte, 100)
	}
	one := eventRoom(20, 5, 100)
	for _, tc := range []struct{ budget, n int }{{0, 1}, {one - 1, 1}, {one, 1}, {2*one - 1, 1}, {2 * one, 2}, {100 * one, 5}} {
		if n, room := planChunk(run, 20, 5, tc.budget); n != tc.n || room != n*one {
			t.Errorf("budget %d: %d records in %d bytes, want %d in %d", tc.budget, n, room, tc.n, tc.n*one)
		}
	}
}

func TestMemoryPublishedMetric(t *testing.T) {
	m, met := newTestMemory(t, 10)
	publish(t, m, "a", "b", "a")
	if d := readCounter(t, met.Published); d != 3 {
		t.Errorf("published metric %v, want 3", d)
	}
}

// TestMemoryHistoryBytes: the byte bound holds over all channels, the
// largest channel loses its oldest records first, the small one keeps its
// own, and a resume into what was evicted gets a gap notice.
func TestMemoryHistoryBytes(t *testing.T) {
	small := []byte(`{"short_message":"x"}`)
	big := []byte(`{"short_message":"` + strings.Repeat("b", 1000) + `"}`)
	one := (&entry{rec: Record{ID: formatID(1_800_000_000_000, 10), JSON: AnnotateJSON(nil, formatID(1_800_000_000_000, 10), "big", big)}}).size()
	bound := 10 * one
	m := NewMemory(MemoryConfig{History: 1000, HistoryBytes: bound})
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	for range 5 {
		if err := m.Publish(ctx, "small", small); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		if err := m.Publish(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	total, bigN, smallN := m.bytes, m.channels["big"].len(), m.channels["small"].len()
	var sum int64
	for _, c := range m.channels {
		sum += c.bytes
	}
	m.mu.Unlock()
	if total > bound || total != sum {
		t.Fatalf("history holds %d bytes (channels say %d), bound %d", total, sum, bound)
	}
	if smallN != 5 || bigN < 7 || bigN > 10 {
		t.Fatalf("kept small %d, big %d; want the 5 small ones and 7 to 9 big ones", smallN, bigN)
	}
	s, err := m.Subscribe(ctx, "big", SubscribeOptions{Since: formatID(m.epoch, 6)})
	if err != nil {
		t.Fatal(err)
	}
	got := summary(t, readReady(t, s))
	if len(got) != bigN+1 || got[0] != "gap:big" {
		t.Fatalf("resume into evicted history: %v, want a gap then %d records", got, bigN)
	}
	// Past the history bound per channel the bytes are given back too.
	m2 := NewMemory(MemoryConfig{History: 3, HistoryBytes: bound})
	t.Cleanup(func() { m2.Close() })
	for range 20 {
		if err := m2.Publish(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
	}
	m2.mu.Lock()
	defer m2.mu.Unlock()
	if c := m2.channels["big"]; c.len() != 3 || m2.bytes != c.bytes || c.bytes > 3*one+100 {
		t.Fatalf("history 3: kept %d records, %d bytes (hub %d)", c.len(), c.bytes, m2.bytes)
	}
}

// TestMemoryChannelBounds: past MaxChannels a new channel's records are
// refused and counted while known channels go on; a channel with no history
// and no record for the TTL is forgotten, which frees room for a new one,
// and a resume from before it gets a gap notice.
func TestMemoryChannelBounds(t *testing.T) {
	met := metrics.New(prometheus.NewRegistry())
	m := NewMemory(MemoryConfig{History: 1, MaxChannels: 2, ChannelTTL: time.Hour, Metrics: met})
	t.Cleanup(func() { m.Close() })
	now := time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	rec := []byte(`{"short_message":"x"}`)
	for _, ch := range []string{"a", "b", "a"} {
		if err := m.Publish(ctx, ch, rec); err != nil {
			t.Fatalf("publish %s: %v", ch, err)
		}
	}
	if err := m.Publish(ctx, "c", rec); !errors.Is(err, ErrTooManyChannels) {
		t.Fatalf("third channel: %v, want ErrTooManyChannels", err)
	}
	if got := readCounter(t, met.Dropped.WithLabelValues(metrics.DropMaxChannels)); got != 1 {
		t.Fatalf("dropped{max_channels} = %v, want 1", got)
	}
	if err := m.Publish(ctx, "b", rec); err != nil {
		t.Fatalf("a known channel past the bound: %v", err)
	}
	since := formatID(m.epoch, 1)

	// b loses its history (history 1: a record of a pushes nothing out of b,
	// so empty b by hand as the byte bound would), then stays silent.
	m.mu.Lock()
	m.bytes -= m.channels["b"].popOldest()
	m.mu.Unlock()
	now = now.Add(2 * time.Hour)
	if err := m.Publish(ctx, "c", rec); err != nil {
		t.Fatalf("a new channel once b is forgotten: %v", err)
	}
	infos, _ := m.Channels(ctx)
	var names []string
	for _, c := range infos {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"a", "c"}) {
		t.Fatalf("channels %v, want [a c]: b forgotten, a kept for its history", names)
	}
	s, err := m.Subscribe(ctx, "*", SubscribeOptions{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(t, readReady(t, s)); len(got) == 0 || got[0] != "gap" {
		t.Fatalf("resume from before b was forgotten: %v, want a gap first", got)
	}
}

// TestMemoryBackfillsShareTheQueueBudget: the events of a tail from the
// in-memory history are held against the bytes queued for all clients
// until taken; past the budget a tail gets a gap notice and the newest
// records that fit, and the budget is whole again once they are taken.
func TestMemoryBackfillsShareTheQueueBudget(t *testing.T) {
	m := NewMemory(MemoryConfig{History: 1000, QueueBudget: 20 * backfillEventSize})
	defer m.Close()
	for i := 1; i <= 100; i++ {
		if err := m.Publish(context.Background(), "x", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	one, err := m.Subscribe(context.Background(), "*", SubscribeOptions{Tail: 10})
	if err != nil {
		t.Fatal(err)
	}
	if held := m.fan.queued.Load(); held != 10*backfillEventSize {
		t.Fatalf("a tail of 10 holds %d bytes, want %d", held, 10*backfillEventSize)
	}
	two, err := m.Subscribe(context.Background(), "*", SubscribeOptions{Tail: 100})
	if err != nil {
		t.Fatal(err)
	}
	// 10 events' worth left: the gap notice and the 9 newest records.
	if got, want := summary(t, readReady(t, two)), append([]string{"gap"}, seqRange("x", 92, 100)...); !slices.Equal(got, want) {
		t.Fatalf("tail of 100 past the budget got %v, want %v", got, want)
	}
	if got := summary(t, readReady(t, one)); !slices.Equal(got, seqRange("x", 91, 100)) {
		t.Fatalf("tail of 10 got %v", got)
	}
	if q := m.fan.queued.Load(); q != 0 {
		t.Fatalf("%d bytes still held once both backfills were taken", q)
	}
	one.Close()
	two.Close()
}
