package publish

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestRedisBackfillsShareTheQueueBudget: a stream node's tail, read from
// Redis for one client, holds its records against the bytes queued for all
// clients until taken; past the budget the client gets a gap notice and
// the newest records that fit.
func TestRedisBackfillsShareTheQueueBudget(t *testing.T) {
	srv := testsupport.StartRedis(t)
	writer, _ := newRedisBus(t, srv.URL(), RoleIngest, nil)
	publishRange(t, writer, "x", 0, 20)

	// What one record of the tail holds, from a node without a budget.
	free, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
	activeBus(t, free)
	probe := subscribe(t, free, "x", SubscribeOptions{Tail: 20})
	got := probe.waitRecords(t, 20, 10*time.Second)
	var perRecord int64
	for _, ev := range probe.snapshot() {
		if ev.Kind == EventRecord {
			perRecord = max(perRecord, backfillEventSize+int64(len(ev.Record.JSON))+entryOverhead)
		}
	}
	if len(got) != 20 || perRecord == 0 {
		t.Fatalf("probe got %d records", len(got))
	}

	// Room for the gap notice and five records.
	budget := backfillEventSize + 5*perRecord
	node, _ := newRedisBus(t, srv.URL(), RoleStream, func(c *RedisConfig) { c.QueueBudget = budget })
	activeBus(t, node)
	sub, err := node.Subscribe(context.Background(), "x", SubscribeOptions{Tail: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if held := node.src.fan.queued.Load(); held <= 0 || held > budget {
		t.Fatalf("the tail holds %d bytes of a budget of %d", held, budget)
	}
	evs := readReady(t, sub)
	if len(evs) == 0 || evs[0].Kind != EventGap {
		t.Fatalf("tail past the budget: %d events, want a gap notice first", len(evs))
	}
	ns := numbers(records(t, evs[1:]))
	if len(ns) < 4 || !slices.Equal(ns, seqInts(20-len(ns), 20)) {
		t.Fatalf("tail past the budget got records %v, want the newest that fit (about 5)", ns)
	}
	if q := node.src.fan.queued.Load(); q != 0 {
		t.Fatalf("%d bytes still held once the tail was taken", q)
	}
}
