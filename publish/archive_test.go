package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/logviewer/logviewer/archive"
)

// openArchive opens an archive in dir, closed on cleanup.
func openArchive(t testing.TB, dir string, cfg archive.Config) *archive.Archive {
	t.Helper()
	cfg.Dir = dir
	a, err := archive.Open(cfg)
	if err != nil {
		t.Fatalf("open archive: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// publishN publishes n records {"short_message":"<tag> <i>"} on channel.
func publishN(t testing.TB, m *Memory, channel, tag string, n int) {
	t.Helper()
	for i := range n {
		if err := m.Publish(context.Background(), channel, fmt.Appendf(nil, `{"short_message":"%s %d"}`, tag, i)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// readEvents reads events until want records came, or fails after 10 s;
// then it checks that nothing more is ready at once.
func readEvents(t testing.TB, s Subscription, want int) []Event {
	t.Helper()
	var all []Event
	records := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for records < want {
		evs, err := s.Next(ctx, make([]Event, 0, 512))
		if err != nil {
			t.Fatalf("after %d of %d records: %v", records, want, err)
		}
		for _, e := range evs {
			if e.Kind == EventRecord {
				records++
			}
		}
		all = append(all, evs...)
	}
	return append(all, readReady(t, s)...)
}

// messages returns "gap" or each record's short_message.
func messages(t testing.TB, evs []Event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case EventGap:
			out = append(out, "gap")
		case EventRecord:
			var r struct {
				Msg string `json:"short_message"`
				ID  string `json:"_event_id"`
			}
			if err := json.Unmarshal(e.Record.JSON, &r); err != nil || r.ID != e.Record.ID {
				t.Fatalf("record %s: %v %s", e.Record.ID, err, e.Record.JSON)
			}
			out = append(out, e.Record.Channel+"/"+r.Msg)
		default:
			out = append(out, fmt.Sprintf("event %d", e.Kind))
		}
	}
	return out
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func seq(channel, tag string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s/%s %d", channel, tag, i))
	}
	return out
}

// TestArchiveRestartWithoutGap stops a hub and starts another on the same
// archive: IDs keep increasing, and a resume or a tail from before the
// restart reads the disk, with no gap notice.
func TestArchiveRestartWithoutGap(t *testing.T) {
	dir := t.TempDir()
	a := openArchive(t, dir, archive.Config{})
	m := NewMemory(MemoryConfig{History: 100, Archive: a})
	publishN(t, m, "web", "old", 50)
	sub, _ := m.Subscribe(context.Background(), "*", SubscribeOptions{Tail: 50})
	old := readEvents(t, sub, 50)
	resumeAt := old[19].Record.ID
	lastOld := old[49].Record.ID
	m.Close()
	a.Close()

	a = openArchive(t, dir, archive.Config{})
	m = NewMemory(MemoryConfig{History: 100, Archive: a})
	defer m.Close()
	publishN(t, m, "db", "new", 10)
	ctx := context.Background()

	sub, err := m.Subscribe(ctx, "*", SubscribeOptions{Since: resumeAt})
	if err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, sub, 40)
	expect(t, messages(t, evs), append(seq("web", "old", 20, 50), seq("db", "new", 0, 10)...)...)
	if k0, _ := archive.ParseKey(lastOld); mustKey(t, evs[30].Record.ID).Compare(k0) <= 0 {
		t.Fatalf("ID %s after the restart is not after %s", evs[30].Record.ID, lastOld)
	}
	// Live records follow the backfill.
	publishN(t, m, "web", "live", 2)
	expect(t, messages(t, readEvents(t, sub, 2)), seq("web", "live", 0, 2)...)
	sub.Close()

	t.Run("tail", func(t *testing.T) {
		sub, _ := m.Subscribe(ctx, "web", SubscribeOptions{Tail: 5})
		expect(t, messages(t, readEvents(t, sub, 5)), append(seq("web", "old", 47, 50), seq("web", "live", 0, 2)...)...)
		sub.Close()
	})
	t.Run("tail in memory", func(t *testing.T) {
		sub, _ := m.Subscribe(ctx, "db", SubscribeOptions{Tail: 3})
		expect(t, messages(t, readEvents(t, sub, 3)), seq("db", "new", 7, 10)...)
		sub.Close()
	})
	t.Run("resume from before the archive", func(t *testing.T) {
		sub, _ := m.Subscribe(ctx, "db", SubscribeOptions{Since: "5-5"})
		expect(t, messages(t, readEvents(t, sub, 10)), append([]string{"gap"}, seq("db", "new", 0, 10)...)...)
		sub.Close()
	})
	t.Run("malformed resume", func(t *testing.T) {
		sub, _ := m.Subscribe(ctx, "db", SubscribeOptions{Since: "nope"})
		expect(t, messages(t, readEvents(t, sub, 10)), append([]string{"gap"}, seq("db", "new", 0, 10)...)...)
		sub.Close()
	})
}

func mustKey(t testing.TB, id string) archive.Key {
	t.Helper()
	k, err := archive.ParseKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestArchiveServesEvictedHistory resumes past what the in-memory history
// keeps, while records are being published: every record once, in order.
func TestArchiveServesEvictedHistory(t *testing.T) {
	a := openArchive(t, t.TempDir(), archive.Config{})
	m := NewMemory(MemoryConfig{History: 10, Archive: a})
	defer m.Close()
	publishN(t, m, "web", "a", 100)
	// Resume after record a 4 (seq 5) while 200 more come.
	since := fmt.Sprintf("%d-%d", m.epoch, 5)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		publishN(t, m, "web", "b", 200)
	}()
	sub, err := m.Subscribe(context.Background(), "web", SubscribeOptions{Since: since, QueueSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	expect(t, messages(t, readEvents(t, sub, 295)), append(seq("web", "a", 5, 100), seq("web", "b", 0, 200)...)...)
}
