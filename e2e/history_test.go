package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// storedAfter opens the archive in dir while no daemon runs and returns the
// messages of its records after the event ID since (all of them when
// empty), oldest first, with their IDs.
func storedAfter(t *testing.T, dir, since string) (msgs, ids []string) {
	t.Helper()
	a, err := archive.Open(archive.Config{Dir: dir})
	if err != nil {
		t.Fatalf("open archive %s: %v", dir, err)
	}
	defer a.Close()
	var o archive.ScanOptions
	if since != "" {
		if o.After, err = archive.ParseKey(since); err != nil {
			t.Fatal(err)
		}
	}
	_, err = a.Scan(context.Background(), o, func(e *archive.Entry) bool {
		if e.Hole {
			t.Errorf("hole at %v: no record was refused", e.Key)
			return true
		}
		msgs = append(msgs, messageOf(string(e.JSON)))
		ids = append(ids, e.Key.String())
		return true
	})
	if err != nil {
		t.Fatalf("scan archive (a corrupt segment?): %v", err)
	}
	return msgs, ids
}

// messageOf cuts the short_message out of a record's JSON (our test lines
// need no unescaping).
func messageOf(js string) string {
	_, after, _ := strings.Cut(js, `"short_message":"`)
	msg, _, _ := strings.Cut(after, `"`)
	return msg
}

// TestHistoryKillNineLoop kills the daemon with SIGKILL 20 times while
// lines flow in and an SSE client reads them. Each restart's resume from
// the last ID the client saw gets exactly what the disk holds after it, in
// order, with no gap notice; at the end no segment is corrupt, no line is
// stored twice, and every line the client saw more than two fsync
// intervals (plus 200 ms of slack for a busy machine) before a kill is on
// disk.
func TestHistoryKillNineLoop(t *testing.T) {
	dir := t.TempDir()
	const (
		rounds = 20
		fsync  = 100 * time.Millisecond
		// A line is written out at most one tick after it is published;
		// a loaded machine (the tests run beside others) may delay that
		// tick's write a little: two ticks and 200 ms.
		margin = 2*fsync + 200*time.Millisecond
	)
	var lastID string
	acked := map[string]bool{} // lines seen more than margin before a kill
	resumed := 0               // lines read from disk by the resumes
	for r := range rounds {
		want, _ := storedAfter(t, dir, lastID)
		resumed += len(want)
		d := testsupport.StartDaemon(t, "--data-dir="+dir, "--fsync="+fsync.String(), "--dns=false")
		var sse *testsupport.SSEStream
		if lastID == "" {
			sse = testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
		} else {
			sse = testsupport.OpenSSE(t, d.HTTPURL+"/sse/*", "Last-Event-ID: "+lastID)
		}
		// The resume: exactly what the disk held after lastID, no gap.
		for i, w := range want {
			ev := sse.Next(t, 10*time.Second)
			if ev.Event != "" {
				t.Fatalf("round %d: %q event in the resume after %s", r, ev.Event, lastID)
			}
			if got := messageOf(ev.Data); got != w {
				t.Fatalf("round %d: resume record %d is %q, want %q", r, i, got, w)
			}
			lastID = ev.ID
		}

		conn, err := net.Dial("tcp", d.SyslogAddr)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stopSending := context.WithCancel(context.Background())
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for n := 0; n < 1_000_000 && ctx.Err() == nil; n++ {
				if _, err := fmt.Fprintf(conn, "<14>hist r=%d n=%d\n", r, n); err != nil {
					return // the daemon is gone
				}
				if n%2 == 0 {
					time.Sleep(time.Millisecond) // a steady flow, not a flood
				}
			}
		}()
		live := 300 + (r*137)%700 // kill after a varying number of lines
		type seen struct {
			msg, id string
			at      time.Time
		}
		var got []seen
		next := 0
		for len(got) < live {
			ev := sse.Next(t, 10*time.Second)
			if ev.Event != "" {
				t.Fatalf("round %d: %q event while live", r, ev.Event)
			}
			msg := messageOf(ev.Data)
			if msg != fmt.Sprintf("hist r=%d n=%d", r, next) {
				t.Fatalf("round %d: live record %q, want n=%d", r, msg, next)
			}
			next++
			got = append(got, seen{msg, ev.ID, time.Now()})
			lastID = ev.ID
		}
		if err := d.Cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		<-d.Exited()
		stopSending()
		conn.Close()
		<-sent
		sse.Close()
		for _, s := range got {
			if killedAt.Sub(s.at) > margin {
				acked[s.msg] = true
			}
		}
		// The next round resumes from a line seen half-way through this
		// one, so that its resume reads many lines from the disk; when
		// that line was lost with the kill, from the newest line stored.
		lastID = got[len(got)/2].id
		if _, ids := storedAfter(t, dir, ""); len(ids) > 0 && !slices.Contains(ids, lastID) {
			lastID = ids[len(ids)-1]
		}
	}
	stored, _ := storedAfter(t, dir, "")
	count := map[string]int{}
	for _, m := range stored {
		count[m]++
		if count[m] > 1 {
			t.Fatalf("line %q stored twice", m)
		}
	}
	missing := 0
	for m := range acked {
		if count[m] == 0 {
			missing++
			t.Errorf("line %q was seen more than %v before a kill but is not on disk", m, margin)
		}
	}
	t.Logf("%d rounds: %d lines on disk, %d seen well before a kill, %d of those missing; %d lines resumed from disk",
		rounds, len(stored), len(acked), missing, resumed)
	if resumed < rounds*100 {
		t.Fatalf("the resumes read only %d lines from disk: the test did not test them", resumed)
	}
}

// TestHistoryCleanRestart stops the daemon with SIGTERM and starts it
// again on the same --data-dir: a tail shows the lines from before the
// restart, and a resume from one of them gets every later line once, then
// live lines, with no gap notice.
func TestHistoryCleanRestart(t *testing.T) {
	dir := t.TempDir()
	d := testsupport.StartDaemon(t, "--data-dir="+dir, "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	send := func(d *testsupport.Daemon, from, to int) {
		conn, err := net.Dial("tcp", d.SyslogAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for n := from; n < to; n++ {
			fmt.Fprintf(conn, "<14>clean n=%d\n", n)
		}
	}
	send(d, 0, 100)
	var ids []string
	for n := range 100 {
		ev := sse.NextRecord(t, 10*time.Second)
		if got := messageOf(ev.Data); got != fmt.Sprintf("clean n=%d", n) {
			t.Fatalf("record %d is %q", n, got)
		}
		ids = append(ids, ev.ID)
	}
	d.Stop(t)

	d = testsupport.StartDaemon(t, "--data-dir="+dir, "--dns=false")
	tail := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*?tail=30")
	for n := 70; n < 100; n++ {
		if ev := tail.Next(t, 10*time.Second); messageOf(ev.Data) != fmt.Sprintf("clean n=%d", n) || ev.ID != ids[n] {
			t.Fatalf("tail after restart: got %q %s, want n=%d %s", ev.Data, ev.ID, n, ids[n])
		}
	}
	resume := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*", "Last-Event-ID: "+ids[9])
	send(d, 100, 110)
	var last string
	for n := 10; n < 110; n++ {
		ev := resume.Next(t, 10*time.Second)
		if ev.Event != "" || messageOf(ev.Data) != fmt.Sprintf("clean n=%d", n) {
			t.Fatalf("resume after restart: got %q %q, want n=%d", ev.Event, ev.Data, n)
		}
		if last != "" && mustKey(t, ev.ID).Compare(mustKey(t, last)) <= 0 {
			t.Fatalf("event ID %s after %s", ev.ID, last)
		}
		last = ev.ID
	}
}

func mustKey(t *testing.T, id string) archive.Key {
	t.Helper()
	k, err := archive.ParseKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
