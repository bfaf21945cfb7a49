package query

import (
	"encoding/json"
	"os"
	"testing"
)

// testCase is one line of testdata/cases.json, which the viewer's
// JavaScript is tested against too (e2e.TestViewerQueryLanguage).
type testCase struct {
	Q      string `json:"q"`
	CS     bool   `json:"cs"`
	Record Record `json:"record"`
	Match  bool   `json:"match"`
}

func loadCases(t *testing.T) []testCase {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []testCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestMatch(t *testing.T) {
	for _, tc := range loadCases(t) {
		t.Run(tc.Q, func(t *testing.T) {
			q, err := Parse(tc.Q, tc.CS)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Match(tc.Record); got != tc.Match {
				t.Errorf("Parse(%q, cs=%v).Match(%v) = %v, want %v", tc.Q, tc.CS, tc.Record, got, tc.Match)
			}
			if q.Basic() { // the few fields a basic query needs give the same answer
				js, _ := json.Marshal(tc.Record)
				basic, err := BasicRecord(js)
				if err != nil {
					t.Fatal(err)
				}
				if got := q.Match(basic); got != tc.Match {
					t.Errorf("basic record %v: Match = %v, want %v", basic, got, tc.Match)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, q := range []string{"/(/", "level:loud", "level:<=9", "app:/[/"} {
		if _, err := Parse(q, false); err == nil {
			t.Errorf("Parse(%q) accepted", q)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a b", `"x y" -z`, "/a b/", "app:/x/ level:<=3", `f:"`, "-", "/", "a:/b"} {
		f.Add(s)
	}
	rec := Record{"short_message": `{"k":"v"}`, "_app": "a", "level": 3.0}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s, false)
		if err != nil {
			return
		}
		q.Match(rec) // must not panic
	})
}

// BenchmarkDecodeAndMatch is what a stream's ?q= costs per record and
// client: decoding the record, then matching.
func BenchmarkDecodeAndMatch(b *testing.B) {
	js := []byte(`{"_event_id":"1-2","_channel":"web-1","version":"1.1","host":"vm","short_message":"GET /api/orders/7731 200 12.5ms ip=10.0.0.1 ua=\"curl/8.5.0\"","timestamp":1796137760.951,"level":6,"_app_name":"10.0.0.1","_group":"lr","_facility":"user","_app":"nginx","_procid":"4242","_hostname":"web-1","_log_time":"2026-12-01T15:18:20.275095Z"}`)
	q, err := Parse("timeout level:<=warning", false)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Record, error)
	}{{"whole", DecodeRecord}, {"basic", BasicRecord}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := bc.decode(js)
				if err != nil {
					b.Fatal(err)
				}
				q.Match(r)
			}
		})
	}
}
