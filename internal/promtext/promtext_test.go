package promtext

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	text := `# HELP logviewer_dropped_total Records dropped.
# TYPE logviewer_dropped_total counter
logviewer_dropped_total{reason="udp_kernel"} 42
logviewer_ingest_connections{transport="tcp"} 3
go_goroutines 17
logviewer_broken_total notanumber
`
	got, err := Parse(strings.NewReader(text), "logviewer_")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{`logviewer_dropped_total{reason="udp_kernel"}`: 42, `logviewer_ingest_connections{transport="tcp"}`: 3}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
