package stream

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/publish"
	"github.com/logviewer/logviewer/query"
	"github.com/prometheus/client_golang/prometheus"
)

// stored is a record as the search test appended it.
type stored struct {
	id, ch string
	time   int64
	js     string
}

var searchWords = []string{"timeout", "Timeout", "disk", "full", "db", "down", "user", "alice", "bob", "ok",
	"retry", "GET", "/api/v1", "500", "ünïcode", `quote"d`, "a<b"}

// searchFixture fills an archive (small segments, so scans cross them)
// with n random records and serves it.
func searchFixture(t *testing.T, n int, rng *rand.Rand) (*fixture, []stored) {
	t.Helper()
	arch, err := archive.Open(archive.Config{Dir: t.TempDir(), SegmentBytes: 64 << 10, Logger: slog.New(slog.NewTextHandler(testLogOut(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arch.Close() })
	channels := []string{"web-1", "web-2", "db-1", "cache"}
	t0 := time.Now().Add(-time.Hour)
	var all []stored
	for i := range n {
		key := archive.Key{Epoch: 1000 + int64(i/500), Seq: uint64(i%500 + 1)}
		ch := channels[rng.IntN(len(channels))]
		var words []string
		for range 1 + rng.IntN(5) {
			words = append(words, searchWords[rng.IntN(len(searchWords))])
		}
		gelf := map[string]any{"version": "1.1", "short_message": strings.Join(words, " "), "level": rng.IntN(8)}
		if rng.IntN(2) == 0 {
			gelf["_app"] = []string{"billing", "api", "cron"}[rng.IntN(3)]
		}
		if rng.IntN(5) == 0 {
			gelf["_user"] = []string{"alice", "bob"}[rng.IntN(2)]
		}
		raw, _ := json.Marshal(gelf)
		js := publish.AnnotateJSON(nil, key.String(), ch, raw)
		ts := t0.Add(time.Duration(i) * 100 * time.Millisecond).UnixNano()
		arch.Append(key, ts, ch, js)
		all = append(all, stored{id: key.String(), ch: ch, time: ts, js: string(js)})
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	hub := publish.NewMemory(publish.MemoryConfig{History: 100, Metrics: m, Archive: arch})
	return startServerOn(t, Config{}, hub, m, reg), all
}

// searchPage GETs one page of /api/search and returns its records' JSON
// and its last line.
func searchPage(t *testing.T, base string, params url.Values) ([]string, searchStatus) {
	t.Helper()
	resp, err := http.Get(base + "/api/search?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search %v: status %d", params, resp.StatusCode)
	}
	var recs []string
	var end searchEnd
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `{"_search":`) {
			if err := json.Unmarshal([]byte(line), &end); err != nil {
				t.Fatal(err)
			}
			continue
		}
		recs = append(recs, line)
	}
	if end.Search.Order == "" {
		t.Fatalf("search %v: no _search line", params)
	}
	return recs, end.Search
}

// TestSearchMatchesBruteForce runs random searches, page by page, and
// compares what they return with a filter of every record.
func TestSearchMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	f, all := searchFixture(t, 2000, rng)
	decoded := make([]query.Record, len(all))
	for i, r := range all {
		decoded[i], _ = query.DecodeRecord([]byte(r.js))
	}
	terms := []string{"timeout", "-timeout", "disk", `"db down"`, "level:<=3", "level:err", "app:billing", "-app:cron",
		"/time(out)?/", "user:alice", "msg:retry", "500", "/api/v1", "ünïcode", "ok", "a<b", "api"}
	patterns := []string{"", "*", "web-*", "db-1", "web-*,cache", "nothing"}
	for i := range 100 {
		var q []string
		for range rng.IntN(3) {
			q = append(q, terms[rng.IntN(len(terms))])
		}
		params := url.Values{"q": {strings.Join(q, " ")}, "limit": {fmt.Sprint(10 + rng.IntN(300))}}
		if p := patterns[rng.IntN(len(patterns))]; p != "" {
			params["ch"] = strings.Split(p, ",")
		}
		var since, until int64
		if rng.IntN(3) == 0 {
			since = all[rng.IntN(len(all))].time
			params.Set("since", time.Unix(0, since).UTC().Format(time.RFC3339Nano))
		}
		if rng.IntN(3) == 0 {
			until = all[rng.IntN(len(all))].time
			params.Set("until", fmt.Sprintf("%.9f", float64(until)/1e9))
			until = int64(float64(until) / 1e9 * 1e9) // as the server parses it
		}
		desc := rng.IntN(2) == 0
		if !desc {
			params.Set("order", "asc")
		}
		if rng.IntN(4) == 0 {
			params.Set("cs", "1")
		}

		parsed, err := query.Parse(params.Get("q"), params.Get("cs") == "1")
		if err != nil {
			t.Fatal(err)
		}
		pattern := strings.Join(params["ch"], ",")
		if pattern == "" {
			pattern = "*"
		}
		var want []string
		for j, r := range all {
			if glob.MatchList(pattern, r.ch) && parsed.Match(decoded[j]) &&
				(since == 0 || r.time >= since) && (until == 0 || r.time <= until) {
				want = append(want, r.js)
			}
		}
		if desc {
			slices.Reverse(want)
		}

		var got []string
		pages := 0
		for ; pages < 1000; pages++ {
			recs, st := searchPage(t, f.url, params)
			got = append(got, recs...)
			if st.Records != len(recs) {
				t.Fatalf("case %d: _search says %d records, page has %d", i, st.Records, len(recs))
			}
			if !st.More {
				break
			}
			params.Set("cursor", st.Cursor)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("case %d %v: got %d records in %d pages, want %d", i, params, len(got), pages+1, len(want))
		}
	}
}

func TestSearchRequests(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	f, _ := searchFixture(t, 50, rng)
	for _, tc := range []struct {
		name   string
		query  string
		status int
	}{
		{"defaults", "", http.StatusOK},
		{"bad limit", "limit=0", http.StatusBadRequest},
		{"bad order", "order=sideways", http.StatusBadRequest},
		{"bad since", "since=yesterday", http.StatusBadRequest},
		{"since ago", "since=7d&until=1h", http.StatusOK},
		{"bad cursor", "cursor=x", http.StatusBadRequest},
		{"bad regex", "q=/(/", http.StatusBadRequest},
		{"control in pattern", "ch=%01", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(f.url + "/api/search?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	t.Run("without history on disk", func(t *testing.T) {
		f := startServer(t, Config{})
		resp, err := http.Get(f.url + "/api/search?q=x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("status %d, want 501", resp.StatusCode)
		}
	})
}
