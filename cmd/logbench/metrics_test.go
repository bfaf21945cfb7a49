package main

import (
	"strings"
	"testing"
)

func TestParseCounters(t *testing.T) {
	text := `# HELP logviewer_published_total Records handed to the bus.
# TYPE logviewer_published_total counter
logviewer_published_total 1234
logviewer_dropped_total{reason="bus_buffer"} 5
logviewer_dropped_total{reason="slow_subscriber"} 0
logviewer_stream_clients{kind="sse"} 3
logviewer_ingest_lines_total{transport="tcp"} 1.5e+06
go_gc_duration_seconds_count 7
logviewer_broken_total x
`
	got, err := parseCounters(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := counters{
		"logviewer_published_total":                         1234,
		`logviewer_dropped_total{reason="bus_buffer"}`:      5,
		`logviewer_dropped_total{reason="slow_subscriber"}`: 0,
		`logviewer_ingest_lines_total{transport="tcp"}`:     1500000,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestCounterDeltas(t *testing.T) {
	before := counters{"a_total": 1, "b_total": 5, "c_total": 2}
	after := counters{"a_total": 11, "b_total": 5, "c_total": 2.5, "d_total": 3}
	got := counterDeltas("u", before, after)
	want := []CounterDelta{{"u", "a_total", 10}, {"u", "c_total", 0.5}, {"u", "d_total", 3}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("delta %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
