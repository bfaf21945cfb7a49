package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
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

// parseCounters reads Prometheus text-format lines.
func parseCounters(r io.Reader) (counters, error) {
	out := counters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, counterPrefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		base, _, _ := strings.Cut(name, "{")
		if !strings.HasSuffix(base, "_total") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
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
