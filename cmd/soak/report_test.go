package main

import (
	"strings"
	"testing"

	"github.com/logviewer/logviewer/internal/numfmt"
)

func TestReasons(t *testing.T) {
	metrics := `# HELP logviewer_dropped_total Records or lines dropped, by reason.
logviewer_dropped_total{reason="max_channels"} 1500
logviewer_dropped_total{reason="udp_kernel"} 7
logviewer_ingest_rejected_total{reason="idle"} 3
logviewer_ingest_truncated_total 2
logviewer_ingest_connections{transport="tcp"} 12
logviewer_ingest_connections{transport="tls"} 3
go_goroutines 40
`
	after, err := parseCounters(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		before counters
		want   string
	}{
		{"all new", counters{}, "dropped: max_channels 1,500, udp_kernel 7; connections refused/closed: idle 3; truncated: 2"},
		{"unchanged left out", counters{`logviewer_dropped_total{reason="udp_kernel"}`: 7, `logviewer_ingest_rejected_total{reason="idle"}`: 3, "logviewer_ingest_truncated_total": 2},
			"dropped: max_channels 1,500"},
		{"nothing", after, "nothing dropped, refused or cut"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reasons(tc.before, after); got != tc.want {
				t.Errorf("reasons = %q, want %q", got, tc.want)
			}
		})
	}
	if got := sumPrefix(after, "logviewer_ingest_connections{"); got != 15 {
		t.Errorf("sumPrefix = %v, want 15", got)
	}
	if _, ok := after["go_goroutines"]; ok {
		t.Error("parseCounters kept a sample without the logviewer_ prefix")
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"}, {-45000, "-45,000"}} {
		if got := numfmt.Thousands(tc.n); got != tc.want {
			t.Errorf("numfmt.Thousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
