package stream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/publish"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSearchScan searches a history of 1 GiB of segment data
// (LOGVIEWER_SEARCH_BENCH_MB to change it) from end to end, page after
// page as a client would, and reports the bytes of segment data scanned
// per CPU second (the scan is one goroutine: per core).
func BenchmarkSearchScan(b *testing.B) {
	mb := 1024
	if v := os.Getenv("LOGVIEWER_SEARCH_BENCH_MB"); v != "" {
		mb, _ = strconv.Atoi(v)
	}
	arch, err := archive.Open(archive.Config{Dir: b.TempDir(), RetentionBytes: int64(mb+128) << 20,
		Logger: slog.New(slog.NewTextHandler(testLogOut(), nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer arch.Close()
	start := time.Now()
	apps := []string{"billing", "api", "cron", "worker"}
	words := []string{"request served", "cache miss for key", "user logged in", "payment accepted", "queue drained"}
	var js []byte
	t0 := time.Now().Add(-24 * time.Hour).UnixNano()
	n := 0
	for ; arch.Size() < int64(mb)<<20; n++ {
		key := archive.Key{Epoch: 1764000000000, Seq: uint64(n + 1)}
		ch := fmt.Sprintf("web-%d", n%16)
		msg := words[n%len(words)]
		if n%1000 == 7 {
			msg = "upstream timeout after 30s"
		}
		js = js[:0]
		js = fmt.Appendf(js, `{"_event_id":"%s","_channel":"%s","version":"1.1","host":"logviewer-1",`+
			`"short_message":"%s id=%08x path=/api/v1/orders/%d","timestamp":%d.%03d,"level":%d,`+
			`"_app_name":"%s","_group":"lr","_facility":"user","_app":"%s","_procid":"%d"}`,
			key, ch, msg, n*2654435761%(1<<32), n%100000, 1764000000+n/1000, n%1000, n%8, ch, apps[n%4], 1000+n%50)
		arch.Append(key, t0+int64(n)*int64(time.Millisecond), ch, js)
	}
	if err := arch.Sync(); err != nil {
		b.Fatal(err)
	}
	size := arch.Size()
	b.Logf("history: %d records, %d MB of segments, written in %v", n, size>>20, time.Since(start).Round(time.Millisecond))

	for _, tc := range []struct {
		name, q, ch string
		order       string
	}{
		{name: "word newest first", q: "timeout"},
		{name: "word oldest first", q: "timeout", order: "asc"},
		{name: "phrase and channel", q: `"upstream timeout"`, ch: "web-7"},
		{name: "no match", q: "nosuchword"},
		{name: "level, 1 in 8 matches", q: "level:<=0"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			params := url.Values{"q": {tc.q}, "limit": {"1000"}, "order": {tc.order}}
			if tc.ch != "" {
				params.Set("ch", tc.ch)
			}
			req, err := parseSearchRequest(httptest.NewRequest(http.MethodGet, "/api/search?"+params.Encode(), nil), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ResetTimer()
			cpu0 := cpuTime(b)
			var found int
			for b.Loop() {
				found = 0
				r := req
				for pages := 0; pages < 100_000; pages++ {
					st, err := search(context.Background(), arch, auth.Anonymous(), r, func([]byte) error { return nil })
					if err != nil {
						b.Fatal(err)
					}
					found += st.Records
					if !st.More {
						break
					}
					r.cursor, _ = archive.ParseKey(st.Cursor)
				}
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
			b.ReportMetric(float64(found), "matches")
		})
	}
}

// The archive is what the memory hub's History returns.
var _ publish.Archive = (*archive.Archive)(nil)
