package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/logviewer/logviewer/internal/numfmt"
)

// Report is the outcome of one logbench run, printed as a table or JSON.
type Report struct {
	Label    string         `json:"label,omitempty"`
	Run      string         `json:"run"`
	Load     *LoadReport    `json:"load,omitempty"`
	Groups   []GroupReport  `json:"groups,omitempty"`
	Procs    []ProcReport   `json:"procs,omitempty"`
	Idle     *IdleReport    `json:"idle,omitempty"`
	Counters []CounterDelta `json:"counters,omitempty"` // daemon counters that grew during the run (--metrics)
	Errors   []string       `json:"errors,omitempty"`
}

// LoadReport describes the offered load.
type LoadReport struct {
	Addr    string  `json:"addr"`
	Proto   string  `json:"proto"`
	Kind    string  `json:"kind"`
	Conns   int     `json:"conns"`
	Size    int     `json:"size"`
	Lines   uint64  `json:"lines"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"` // lines/s offered
}

// Latency holds percentiles of send-to-receipt latency in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// GroupReport sums up the subscribers of one kind (sse, ws, redis, and
// the slow ones apart).
type GroupReport struct {
	Name        string  `json:"name"`
	Subscribers int     `json:"subscribers"`
	Connected   int     `json:"connected"`
	Failed      int     `json:"failed"`
	Expected    uint64  `json:"expected_per_subscriber"`
	Received    uint64  `json:"received"` // distinct load lines, all subscribers
	Lost        uint64  `json:"lost"`     // expected and never received, all subscribers
	Gaps        uint64  `json:"gaps"`     // runs of lost lines
	Dups        uint64  `json:"duplicates"`
	Reordered   uint64  `json:"reordered"`
	Dropped     uint64  `json:"dropped_notified"` // sum of dropped notices
	GapNotices  uint64  `json:"gap_notices"`
	Rate        float64 `json:"delivered_rate"` // lines/s per subscriber (mean), load start to its last line
	Latency     Latency `json:"latency"`
	// WorstSeconds are the seconds of the load (from its start, by send
	// time) whose lines had the highest latency: a stall shows as one or
	// two seconds far above the rest.
	WorstSeconds []SecondMax `json:"worst_seconds,omitempty"`
	FirstError   string      `json:"first_error,omitempty"`
}

// SecondMax is the worst latency of the lines sent in one second of the load.
type SecondMax struct {
	Second int     `json:"second"`
	MaxMS  float64 `json:"max_ms"`
}

// worstSeconds returns the n seconds with the highest latency, worst first.
func worstSeconds(secMax []int64, n int) []SecondMax {
	var out []SecondMax
	for i, v := range secMax {
		if v > 0 {
			out = append(out, SecondMax{Second: i, MaxMS: ms(time.Duration(v))})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MaxMS > out[j].MaxMS })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// mergeSeconds folds b into a (per-second maxima).
func mergeSeconds(a, b []int64) []int64 {
	if len(b) > len(a) {
		a = append(a, make([]int64, len(b)-len(a))...)
	}
	for i, v := range b {
		a[i] = max(a[i], v)
	}
	return a
}

// ProcReport is what one watched process (--pid) used during the run.
type ProcReport struct {
	PID        int     `json:"pid"`
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`  // of one core over the measured wall time
	RSSPeakMiB float64 `json:"rss_peak_mib"` // highest VmRSS sampled during the run
	RSSEndMiB  float64 `json:"rss_end_mib"`
	HWMMiB     float64 `json:"vmhwm_mib"` // peak since the process started
	Error      string  `json:"error,omitempty"`
}

// IdleReport tells what idle connected clients cost each watched process.
type IdleReport struct {
	Clients int       `json:"clients"`
	Opened  int       `json:"opened"`
	Error   string    `json:"error,omitempty"`
	Procs   []IdleRSS `json:"procs,omitempty"`
}

// IdleRSS is one process's memory before and after the idle clients.
type IdleRSS struct {
	PID          int     `json:"pid"`
	Name         string  `json:"name"`
	RSSBeforeMiB float64 `json:"rss_before_mib"`
	RSSAfterMiB  float64 `json:"rss_after_mib"`
	KiBPerClient float64 `json:"kib_per_client"`
}

// groupResults folds subscriber results into report rows, in a fixed
// order of kinds.
func groupResults(results []subscriberResult, expected uint64, loadStart time.Time) []GroupReport {
	byName := map[string]*GroupReport{}
	hists := map[string]*histogram{}
	secs := map[string][]int64{}
	rates := map[string][]float64{}
	var names []string
	for _, r := range results {
		g := byName[r.group]
		if g == nil {
			g = &GroupReport{Name: r.group, Expected: expected}
			byName[r.group] = g
			hists[r.group] = &histogram{}
			names = append(names, r.group)
		}
		g.Subscribers++
		if r.connected {
			g.Connected++
		}
		if r.err != nil {
			g.Failed++
			if g.FirstError == "" {
				g.FirstError = r.err.Error()
			}
		}
		g.Received += r.got
		g.Lost += r.loss.Lost
		g.Gaps += r.loss.Gaps
		g.Dups += r.dups
		g.Reordered += r.reorder
		g.Dropped += r.dropped
		g.GapNotices += r.gapNotices
		hists[r.group].merge(r.hist)
		secs[r.group] = mergeSeconds(secs[r.group], r.secMax)
		if r.got > 0 && !loadStart.IsZero() {
			if secs := time.Duration(r.lastRecv - loadStart.UnixNano()).Seconds(); secs > 0 {
				rates[r.group] = append(rates[r.group], float64(r.got)/secs)
			}
		}
	}
	sort.Slice(names, func(i, j int) bool { return groupOrder(names[i]) < groupOrder(names[j]) })
	// With several kinds of reading subscribers, an "all" row sums them up
	// (slow ones apart): the figure the latency goals are about.
	var reading []string
	for _, n := range names {
		if !strings.HasSuffix(n, "-slow") {
			reading = append(reading, n)
		}
	}
	if len(reading) > 1 {
		all := &GroupReport{Name: groupAll, Expected: expected}
		h := &histogram{}
		for _, n := range reading {
			g := byName[n]
			all.Subscribers += g.Subscribers
			all.Connected += g.Connected
			all.Failed += g.Failed
			all.Received += g.Received
			all.Lost += g.Lost
			all.Gaps += g.Gaps
			all.Dups += g.Dups
			all.Reordered += g.Reordered
			all.Dropped += g.Dropped
			all.GapNotices += g.GapNotices
			if all.FirstError == "" {
				all.FirstError = g.FirstError
			}
			h.merge(hists[n])
			secs[groupAll] = mergeSeconds(secs[groupAll], secs[n])
			rates[groupAll] = append(rates[groupAll], rates[n]...)
		}
		byName[groupAll], hists[groupAll] = all, h
		names = append(names, groupAll)
	}
	out := make([]GroupReport, 0, len(names))
	for _, n := range names {
		g := byName[n]
		h := hists[n]
		g.Latency = Latency{
			P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)),
			Max: ms(time.Duration(h.max)), Mean: ms(h.mean()),
		}
		g.WorstSeconds = worstSeconds(secs[n], 3)
		if rs := rates[n]; len(rs) > 0 {
			var sum float64
			for _, r := range rs {
				sum += r
			}
			g.Rate = sum / float64(len(rs))
		}
		out = append(out, *g)
	}
	return out
}

// groupAll names the row that sums up all reading subscribers.
const groupAll = "all"

func groupOrder(name string) string {
	for i, k := range []string{subSSE, subWS, subRedis} {
		if strings.HasPrefix(name, k) {
			return fmt.Sprint(i) + name
		}
	}
	return "9" + name
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(kib uint64) float64 { return float64(kib) / 1024 }

// writeJSON prints the report as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// writeTable prints the report as aligned tables.
func (r *Report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	title := "logbench run " + r.Run
	if r.Label != "" {
		title = r.Label + " (run " + r.Run + ")"
	}
	fmt.Fprintln(tw, title)
	if l := r.Load; l != nil {
		fmt.Fprintf(tw, "offered: %s lines (%s %s, %d conn, ~%d B) in %.3fs = %s lines/s\n",
			num(float64(l.Lines)), l.Kind, l.Proto, l.Conns, l.Size, l.Seconds, num(l.Rate))
	}
	if len(r.Groups) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "group\tsubs\tok\treceived\tlost\tgaps\tdups\tdropped\tdelivered/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
		for _, g := range r.Groups {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
				g.Name, g.Subscribers, g.Connected-g.Failed, num(float64(g.Received)), num(float64(g.Lost)),
				g.Gaps, g.Dups, num(float64(g.Dropped)), num(g.Rate),
				g.Latency.P50, g.Latency.P90, g.Latency.P99, g.Latency.Max)
		}
	}
	if len(r.Procs) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "process\tpid\tcpu s\tcpu %\trss peak MiB\trss end MiB\tVmHWM MiB\t")
		for _, p := range r.Procs {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t\n",
				p.Name, p.PID, p.CPUSeconds, p.CPUPercent, p.RSSPeakMiB, p.RSSEndMiB, p.HWMMiB)
		}
	}
	if len(r.Counters) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "daemon counter\tgrew by\t")
		for _, c := range r.Counters {
			fmt.Fprintf(tw, "%s\t%s\t\n", c.Name, num(c.Delta))
		}
	}
	if i := r.Idle; i != nil {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "idle clients: %d of %d connected\n", i.Opened, i.Clients)
		if len(i.Procs) > 0 {
			fmt.Fprintln(tw, "process\tpid\trss before MiB\trss after MiB\tKiB/client\t")
			for _, p := range i.Procs {
				fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t\n", p.Name, p.PID, p.RSSBeforeMiB, p.RSSAfterMiB, p.KiBPerClient)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	hasAll := false
	for _, g := range r.Groups {
		hasAll = hasAll || g.Name == groupAll
	}
	for _, g := range r.Groups {
		if len(g.WorstSeconds) > 0 && !strings.HasSuffix(g.Name, "-slow") && (g.Name == groupAll || !hasAll) {
			parts := make([]string, len(g.WorstSeconds))
			for i, s := range g.WorstSeconds {
				parts[i] = fmt.Sprintf("second %d: %.1f ms", s.Second, s.MaxMS)
			}
			fmt.Fprintf(w, "%s: worst seconds of the load (by send time): %s\n", g.Name, strings.Join(parts, ", "))
		}
	}
	for _, g := range r.Groups {
		if g.FirstError != "" && g.Name != groupAll {
			fmt.Fprintf(w, "%s: %d subscriber(s) failed, first: %s\n", g.Name, g.Failed, g.FirstError)
		}
	}
	if r.Idle != nil && r.Idle.Error != "" {
		fmt.Fprintf(w, "idle clients: %s\n", r.Idle.Error)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

// num formats a count or rate, rounded, with thousands separators.
func num(v float64) string { return numfmt.Thousands(int64(math.Round(v))) }
