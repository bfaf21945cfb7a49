package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/logviewer/logviewer/internal/promtext"
)

// counterPrefix selects the daemon counters a run reports: lines received,
// records published and dropped (by reason) say where lost lines went.
const counterPrefix = "logviewer_"

// counters maps a sample ("name{labels}") to its value.
type counters map[string]float64

// scrapeCounters reads the *_total samples with counterPrefix from a
// Prometheus text endpoint.
func scrapeCounters(ctx context.Context, client *http.Client, url string) (counters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: status %s", url, resp.Status)
	}
	return parseCounters(resp.Body)
}

// parseCounters reads the *_total samples with counterPrefix of a
// /metrics page.
func parseCounters(r io.Reader) (counters, error) {
	all, err := promtext.Parse(r, counterPrefix)
	if err != nil {
		return nil, err
	}
	out := counters{}
	for name, v := range all {
		if base, _, _ := strings.Cut(name, "{"); strings.HasSuffix(base, "_total") {
			out[name] = v
		}
	}
	return out, nil
}

// CounterDelta is how much one daemon counter grew during the run.
type CounterDelta struct {
	URL   string  `json:"url"`
	Name  string  `json:"name"`
	Delta float64 `json:"delta"`
}

// counterDeltas returns the counters of after that grew since before,
// sorted by name.
func counterDeltas(url string, before, after counters) []CounterDelta {
	var out []CounterDelta
	for name, v := range after {
		if d := v - before[name]; d != 0 {
			out = append(out, CounterDelta{URL: url, Name: name, Delta: d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
