package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestStreamFilter: ?q= and ?level= send only the matching records, in the
// tail and live, so the bytes on the wire are theirs alone.
func TestStreamFilter(t *testing.T) {
	records := []struct {
		ch, msg string
		level   int
	}{
		{"web-1", "GET / 200", 6},
		{"web-1", "upstream timed out", 3},
		{"db-1", "slow query 2.3 s", 4},
		{"db-1", "connection refused", 2},
		{"web-2", "Timeout waiting for lock", 5},
	}
	publishAll := func(f *fixture) {
		for _, r := range records {
			js := fmt.Sprintf(`{"short_message":%q,"level":%d,"_app":"app-%s"}`, r.msg, r.level, r.ch)
			if err := f.hub.Publish(t.Context(), r.ch, []byte(js)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"q=time", []string{"upstream timed out", "Timeout waiting for lock"}},
		{"q=Time&cs=1", []string{"Timeout waiting for lock"}},
		{"q=/tim(e|ed)%20?out/", []string{"upstream timed out", "Timeout waiting for lock"}},
		{"level=err", []string{"upstream timed out", "connection refused"}},
		{"level=3&q=refused", []string{"connection refused"}},
		{"q=app-db", []string{"slow query 2.3 s", "connection refused"}},
		{"", []string{"GET / 200", "upstream timed out", "slow query 2.3 s", "connection refused", "Timeout waiting for lock"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			f := startServer(t, Config{})
			publishAll(f)
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/sse/*?format=ndjson&tail=100&"+tc.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			sc := bufio.NewScanner(resp.Body)
			read := func() []string {
				var got []string
				for len(got) < len(tc.want) && sc.Scan() {
					var rec struct {
						Msg string `json:"short_message"`
					}
					if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
						t.Fatalf("line %q: %v", sc.Text(), err)
					}
					got = append(got, rec.Msg)
				}
				return got
			}
			if got := read(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("tail: %q, want %q", got, tc.want)
			}
			publishAll(f)
			if got := read(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("live: %q, want %q", got, tc.want)
			}
		})
	}
	f := startServer(t, Config{})
	for _, bad := range []string{"level=loud", "level=9", "q=/(/"} {
		resp, err := http.Get(f.url + "/sse/*?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
