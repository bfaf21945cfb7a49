package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// pageTrace records a Chromium performance trace of the tab (what DevTools'
// Performance panel records): tasks of the renderer's main thread with the
// script calls, style, layout, paint and garbage collection inside them.
type pageTrace struct {
	mu     sync.Mutex
	events []json.RawMessage
	done   chan struct{}
}

// startTrace starts tracing the tab of ctx.
func startTrace(tb testing.TB, ctx context.Context) *pageTrace {
	tb.Helper()
	tr := &pageTrace{done: make(chan struct{})}
	var once sync.Once
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			tr.mu.Lock()
			for _, v := range e.Value {
				tr.events = append(tr.events, json.RawMessage(slices.Clone(v)))
			}
			tr.mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(tr.done) })
		}
	}); err != nil {
		tb.Fatalf("listen for trace events: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, uiTimeout)
	defer cancel()
	if _, err := chromedp.Call(cctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReportEvents,
		TraceConfig: &tracing.TraceConfig{IncludedCategories: []string{
			"toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "blink", "loading",
		}},
	}); err != nil {
		tb.Fatalf("start trace: %v", err)
	}
	return tr
}

// stop ends the trace and waits for its events.
func (tr *pageTrace) stop(tb testing.TB, ctx context.Context) {
	tb.Helper()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := chromedp.Call(cctx, tracing.End, cdp.Empty{}); err != nil {
		tb.Fatalf("end trace: %v", err)
	}
	select {
	case <-tr.done:
	case <-cctx.Done():
		tb.Fatalf("trace incomplete after a minute")
	}
}

// write saves the trace as JSON that DevTools' Performance panel opens.
func (tr *pageTrace) write(tb testing.TB, path string) {
	tb.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	b, err := json.Marshal(map[string]any{"traceEvents": tr.events})
	if err != nil {
		tb.Fatalf("encode trace: %v", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatalf("write trace: %v", err)
	}
}

// traceEvent is the part of a trace event the summary reads.
type traceEvent struct {
	Name string  `json:"name"`
	Ph   string  `json:"ph"`
	Ts   float64 `json:"ts"`  // µs
	Dur  float64 `json:"dur"` // µs
	Pid  int     `json:"pid"`
	Tid  int     `json:"tid"`
	Args struct {
		Name string `json:"name"` // thread_name metadata
		Data struct {
			FunctionName string `json:"functionName"`
			URL          string `json:"url"`
			LineNumber   int    `json:"lineNumber"`
			Type         string `json:"type"` // EventDispatch
		} `json:"data"`
	} `json:"args"`
}

// longTasks describes the main-thread tasks of the renderer longer than
// min: for each, its length and where the time went (the events inside it,
// by name, inclusive), longest task first, at most n of them.
func (tr *pageTrace) longTasks(min time.Duration, n int) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var evs []traceEvent
	mains := map[[2]int]bool{}
	for _, raw := range tr.events {
		var e traceEvent
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		if e.Ph == "M" && e.Name == "thread_name" && e.Args.Name == "CrRendererMain" {
			mains[[2]int{e.Pid, e.Tid}] = true
		}
		if e.Ph == "X" {
			evs = append(evs, e)
		}
	}
	var tasks []traceEvent
	for _, e := range evs {
		if e.Name == "RunTask" && mains[[2]int{e.Pid, e.Tid}] && e.Dur >= float64(min.Microseconds()) {
			tasks = append(tasks, e)
		}
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].Dur > tasks[j].Dur })
	if len(tasks) > n {
		tasks = tasks[:n]
	}
	var out bytes.Buffer
	for _, t := range tasks {
		by := map[string]float64{}
		for _, e := range evs {
			if e.Pid != t.Pid || e.Tid != t.Tid || e.Ts < t.Ts || e.Ts+e.Dur > t.Ts+t.Dur || e.Name == "RunTask" {
				continue
			}
			name := e.Name
			if d := e.Args.Data; d.FunctionName != "" {
				name += " " + d.FunctionName + "@" + d.URL[strings.LastIndexByte(d.URL, '/')+1:] + ":" + fmt.Sprint(d.LineNumber)
			} else if d.Type != "" {
				name += " " + d.Type
			}
			by[name] += e.Dur
		}
		names := make([]string, 0, len(by))
		for k := range by {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return by[names[i]] > by[names[j]] })
		fmt.Fprintf(&out, "task %.1f ms:", t.Dur/1000)
		for i, k := range names {
			if i == 8 {
				break
			}
			fmt.Fprintf(&out, " %s %.1f;", k, by[k]/1000)
		}
		out.WriteByte('\n')
	}
	return out.String()
}

// startProfile starts sampling the tab's JavaScript (what DevTools' Profiler
// records) every 200 µs.
func startProfile(tb testing.TB, ctx context.Context) {
	tb.Helper()
	cctx, cancel := context.WithTimeout(ctx, uiTimeout)
	defer cancel()
	for _, err := range []error{
		func() error { _, err := chromedp.Call(cctx, profiler.Enable, cdp.Empty{}); return err }(),
		func() error {
			_, err := chromedp.Call(cctx, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 200})
			return err
		}(),
		func() error { _, err := chromedp.Call(cctx, profiler.Start, cdp.Empty{}); return err }(),
	} {
		if err != nil {
			tb.Fatalf("start profile: %v", err)
		}
	}
}

// stopProfile stops sampling and describes where the time went: the
// functions with the most samples on top of the stack (self time), in ms.
func stopProfile(tb testing.TB, ctx context.Context, n int) string {
	tb.Helper()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := chromedp.Call(cctx, profiler.Stop, cdp.Empty{})
	if err != nil || res.Profile == nil {
		tb.Fatalf("stop profile: %v", err)
	}
	p := res.Profile
	name := map[int64]string{}
	for _, nd := range p.Nodes {
		f := nd.CallFrame
		fn := f.FunctionName
		if fn == "" {
			fn = "(anonymous)"
		}
		if f.URL != "" {
			fn += " " + f.URL[strings.LastIndexByte(f.URL, '/')+1:] + ":" + fmt.Sprint(f.LineNumber+1)
		}
		name[nd.ID] = fn
	}
	self := map[string]float64{}
	for i, id := range p.Samples {
		if i+1 < len(p.TimeDeltas) {
			self[name[id]] += float64(p.TimeDeltas[i+1]) / 1000
		}
	}
	names := make([]string, 0, len(self))
	for k := range self {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return self[names[i]] > self[names[j]] })
	var out bytes.Buffer
	for i, k := range names {
		if i == n {
			break
		}
		fmt.Fprintf(&out, "%8.1f ms  %s\n", self[k], k)
	}
	return out.String()
}
