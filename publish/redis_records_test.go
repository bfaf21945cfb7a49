package publish

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestRedisPublishRecords: with PublishRecords, a plain SUBSCRIBE on a
// channel (the proof of concept's relay) gets each record's GELF, exactly
// as ingest made it in compat mode, with "_event_id" first otherwise; a
// stream node still delivers each record once.
func TestRedisPublishRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		compat bool
	}{
		{"compat: the five fields", true},
		{"with event ID", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsupport.StartRedis(t)
			ingest, _ := newRedisBus(t, srv.URL(), RoleIngest, func(c *RedisConfig) {
				c.PublishRecords, c.Compat = true, tc.compat
			})
			stream, _ := newRedisBus(t, srv.URL(), RoleStream, nil)
			activeBus(t, stream)
			all := subscribe(t, stream, "*", SubscribeOptions{})

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			raw := srv.Client(t).Subscribe(ctx, "web")
			defer raw.Close()
			if _, err := raw.Receive(ctx); err != nil {
				t.Fatalf("raw subscribe: %v", err)
			}
			publishRange(t, ingest, "web", 0, 50)
			publishRange(t, ingest, "db", 50, 60)

			got := all.waitRecords(t, 60, 10*time.Second)
			if !slices.Equal(numbers(got), seqInts(0, 60)) {
				t.Fatalf("stream node got %v, want 0..59 once each", numbers(got))
			}
			for i := range 50 {
				msg, err := raw.ReceiveMessage(ctx)
				if err != nil {
					t.Fatalf("raw receive %d: %v", i, err)
				}
				if tc.compat {
					if want := string(numbered(i)); msg.Payload != want {
						t.Fatalf("message %d: %s, want %s", i, msg.Payload, want)
					}
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
					t.Fatalf("message %d is not JSON: %q", i, msg.Payload)
				}
				if m["_event_id"] != got[i].ID || m["_n"] != float64(i) || m["_channel"] != nil {
					t.Fatalf("message %d: %v; want _event_id %s", i, m, got[i].ID)
				}
			}
			// A duplicate would have come before the next batch's records.
			publishRange(t, ingest, "web", 60, 61)
			got = all.waitRecords(t, 61, 10*time.Second)
			if !slices.Equal(numbers(got), seqInts(0, 61)) {
				t.Fatalf("stream node got %v, want 0..60 once each", numbers(got))
			}
		})
	}
}
