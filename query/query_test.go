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
