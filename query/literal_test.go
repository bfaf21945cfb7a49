package query

import (
	"encoding/json"
	"testing"
)

func TestPrefilter(t *testing.T) {
	for _, tc := range []struct {
		name, q, js string
		may         bool
	}{
		{"word found", "timeout", `{"short_message":"a TimeOut here"}`, true},
		{"word absent", "timeout", `{"short_message":"all good"}`, false},
		{"case sensitive", "TimeOut", `{"short_message":"a timeout"}`, true}, // Parse below is case-insensitive
		{"phrase", `"db down"`, `{"short_message":"the DB down again"}`, true},
		{"phrase absent", `"db down"`, `{"short_message":"db is down"}`, false},
		{"two words, one absent", "disk full", `{"short_message":"disk ok"}`, false},
		{"unicode escape is not ruled out", "timeout", `{"short_message":"Time\u004fut"}`, true},
		{"non-ascii is not ruled out", "kelvin", `{"short_message":"\u212aelvin é"}`, true},
		{"numeric app is not ruled out", "1000", `{"short_message":"x","_app":1e3}`, true},
		{"negated terms do not count", "-timeout", `{"short_message":"x"}`, true},
		{"regex does not count", "/time.ut/", `{"short_message":"x"}`, true},
		{"field other than msg does not count", "user:alice", `{"short_message":"x"}`, true},
		{"msg field counts", "msg:alice", `{"short_message":"x"}`, false},
		{"level passes", "level:<=3", `{"short_message":"x","level":3}`, true},
		{"level fails", "level:<=3", `{"short_message":"x","level":4}`, false},
		{"negated level", "-level:debug", `{"short_message":"x","level":7}`, false},
		{"level as a float is decoded", "level:<=3", `{"short_message":"x","level":4.0}`, true},
		{"two level keys are decoded", "level:<=3", `{"short_message":"x","level":4,"_o":{"level":1}}`, true},
		{"level in a message is not the level", "level:<=3", `{"short_message":"{\"level\":1}","level":6}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Parse(tc.q, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Prefilter().MayMatch([]byte(tc.js)); got != tc.may {
				t.Fatalf("MayMatch(%s) = %v, want %v", tc.js, got, tc.may)
			}
		})
	}
}

// FuzzPrefilter checks the prefilter's promise: a record the query matches
// is never ruled out.
func FuzzPrefilter(f *testing.F) {
	f.Add("timeout", "a TimeOut", "web", false)
	f.Add(`"db down" -ok`, "DB DOWN", "api", true)
	f.Add("K", "\u212a", "x", false)
	f.Add("msg:a<b", "a<b", "", false)
	f.Add("level:<=3 x", "x", "", false)
	f.Add(`-level:err "level":`, `{"level":2}`, "", false)
	f.Fuzz(func(t *testing.T, query, msg, app string, cs bool) {
		q, err := Parse(query, cs)
		if err != nil {
			return
		}
		js, err := json.Marshal(map[string]any{"short_message": msg, "_app": app, "_channel": "ch", "level": len(msg) % 9})
		if err != nil {
			return
		}
		r, err := DecodeRecord(js)
		if err != nil {
			return
		}
		if q.Match(r) && !q.Prefilter().MayMatch(js) {
			t.Fatalf("query %q matches %s but the prefilter rules it out", query, js)
		}
		if match, sure := q.Prefilter().Decide(js); sure && match != q.Match(r) {
			t.Fatalf("query %q on %s: the prefilter is sure of %v, the query says %v", query, js, match, !match)
		}
	})
}
