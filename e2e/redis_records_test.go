package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestRedisPublishRecordsForPlainSubscribers: with --redis-publish-records
// --gelf-compat, the proof of concept's relay (a plain SUBSCRIBE on the
// per-host channel) receives each record as the template's five fields,
// and a stream node on the same Redis streams each record once.
func TestRedisPublishRecordsForPlainSubscribers(t *testing.T) {
	srv := testsupport.StartRedis(t)
	stream := redisStreamNode(t, srv)
	ingest := redisIngestNode(t, srv, "--redis-publish-records", "--gelf-compat")
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	relay := srv.Client(t).Subscribe(ctx, "127.0.0.1")
	defer relay.Close()
	if _, err := relay.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	for _, msg := range []string{"first", "second"} {
		testsupport.SendPython(t, ingest.SyslogAddr, "udp", "warning:"+msg)
		m, err := relay.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("relay receive: %v", err)
		}
		var f map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &f); err != nil {
			t.Fatalf("relay got %q: %v", m.Payload, err)
		}
		keys := make([]string, 0, len(f))
		for k := range f {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"_app_name", "_group", "host", "short_message", "timestamp"}; !slices.Equal(keys, want) {
			t.Errorf("relay got fields %v, want exactly %v: %s", keys, want, m.Payload)
		}
		if f["short_message"] != msg || f["_app_name"] != "127.0.0.1" {
			t.Errorf("relay got %s", m.Payload)
		}
		ev := sse.NextRecord(t, recordTimeout)
		if got := ev.Fields(t)["short_message"]; got != msg {
			t.Fatalf("stream node record %q, want %q (once each, in order)", got, msg)
		}
	}
}
