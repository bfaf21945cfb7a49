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

// TestArchiveConcurrentResumes resumes from the archive again and again
// while records are published and retention deletes segments under the
// scans: every resume delivers increasing IDs, a gap notice only first,
// and then the live records with no hole.
func TestArchiveConcurrentResumes(t *testing.T) {
	a := openArchive(t, t.TempDir(), archive.Config{SegmentBytes: 16 << 10, RetentionBytes: 128 << 10, Fsync: 5 * time.Millisecond})
	m := NewMemory(MemoryConfig{History: 10, Archive: a})
	defer m.Close()
	const total = 6000
	ids := make(chan string, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			ch := []string{"a", "b", "c"}[i%3]
			if err := m.Publish(context.Background(), ch, fmt.Appendf(nil, `{"short_message":"m %d"}`, i)); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			if i%50 == 0 {
				ids <- fmt.Sprintf("%d-%d", m.epoch, i+1)
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for since := range ids {
				pattern := []string{"*", "a", "b,c", "*"}[w]
				s, err := m.Subscribe(context.Background(), pattern, SubscribeOptions{Since: since, QueueSize: total})
				if err != nil {
					t.Errorf("subscribe: %v", err)
					return
				}
				last := mustKey(t, since)
				gap, every := false, pattern == "*" // every record of "*": seqs follow each other
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				for n := 0; ; n++ {
					evs, err := s.Next(ctx, make([]Event, 0, 256))
					if err != nil {
						break // caught up with what was published meanwhile
					}
					for i, e := range evs {
						if e.Kind == EventGap {
							if n > 0 || i > 0 {
								t.Errorf("resume from %s: a gap notice after records", since)
							}
							gap = true
						}
						if e.Kind != EventRecord {
							continue
						}
						k := mustKey(t, e.Record.ID)
						if k.Compare(last) <= 0 || (every && !gap && k.Seq != last.Seq+1) {
							t.Errorf("resume from %s: %s after %s", since, k, last)
						}
						last, gap = k, false
					}
				}
				cancel()
				s.Close()
			}
		}()
	}
	<-done
	close(ids)
	wg.Wait()
	// A full scan while nothing is published reads every segment whole.
	n := 0
	if _, err := a.Scan(context.Background(), archive.ScanOptions{}, func(*archive.Entry) bool { n++; return true }); err != nil || n == 0 {
		t.Fatalf("scan: %d records, %v", n, err)
	}
}

// TestArchiveBackfillsShareTheQueueBudget: what resumes read from disk is
// held against the bytes queued for all clients. With the budget taken by
// one client's backfill, a second resume gets a gap and no old records
// instead of holding more; once the first client has taken its backfill,
// the budget is free again and the totals return to zero.
func TestArchiveBackfillsShareTheQueueBudget(t *testing.T) {
	dir := t.TempDir()
	a := openArchive(t, dir, archive.Config{})
	m := NewMemory(MemoryConfig{History: 1000, Archive: a})
	publishN(t, m, "web", "old", 200)
	sub, _ := m.Subscribe(context.Background(), "*", SubscribeOptions{Tail: 1})
	first := readEvents(t, sub, 1)[0].Record.ID // the last record of this life
	sub.Close()
	m.Close()

	// After a restart every resume reads the disk. The budget holds about
	// 100 of these records: the first resume takes it all.
	m = NewMemory(MemoryConfig{History: 1000, Archive: a, QueueBudget: 100 * (entryOverhead + 60)})
	defer m.Close()
	since := fmt.Sprintf("%d-%d", mustKey(t, first).Epoch, 0)
	one, err := m.Subscribe(context.Background(), "*", SubscribeOptions{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	// The backfill is read on another goroutine: wait until it is held.
	for deadline := time.Now().Add(10 * time.Second); m.fan.queued.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first resume never held its backfill")
		}
		time.Sleep(time.Millisecond)
	}
	if held := m.fan.queued.Load(); held <= 0 || held > m.fan.budget {
		t.Fatalf("first backfill holds %d bytes, budget %d", held, m.fan.budget)
	}
	two, err := m.Subscribe(context.Background(), "*", SubscribeOptions{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	got := messages(t, readReadyWithin(t, two, 10*time.Second))
	if len(got) != 1 || got[0] != "gap" {
		t.Fatalf("second resume with the budget spent got %v, want only a gap", got)
	}
	// The first client gets a gap (its resume was cut) and what fitted.
	evs := readReadyWithin(t, one, 10*time.Second)
	if msgs := messages(t, evs); len(msgs) < 2 || msgs[0] != "gap" || len(msgs) > 101 {
		t.Fatalf("first resume got %d events (%v...), want a gap then at most the budget's records", len(msgs), msgs[:min(3, len(msgs))])
	}
	if q := m.fan.queued.Load(); q != 0 {
		t.Fatalf("%d bytes still counted once the backfill was taken", q)
	}
	two.Close()
	one.Close()
	if q := m.fan.queued.Load(); q != 0 {
		t.Fatalf("%d bytes still counted after both closed", q)
	}
}

// readReadyWithin waits up to d for the first events of s, then returns
// them with whatever else is ready.
func readReadyWithin(t testing.TB, s Subscription, d time.Duration) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	evs, err := s.Next(ctx, make([]Event, 0, 1024))
	if err != nil {
		t.Fatalf("no event within %v: %v", d, err)
	}
	return append(evs, readReady(t, s)...)
}
