package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNum(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.4, "1,234,567"}, {-12345, "-12,345"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := num(tc.in); got != tc.want {
				t.Errorf("num(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestGroupResults(t *testing.T) {
	errTest := errors.New("boom")
	start := time.Unix(1000, 0)
	h1, h2 := &histogram{}, &histogram{}
	for i := 0; i < 100; i++ {
		h1.add(int64(time.Millisecond))
		h2.add(int64(3 * time.Millisecond))
	}
	results := []subscriberResult{
		{group: "ws", connected: true, got: 100, hist: h2, lastRecv: start.Add(2 * time.Second).UnixNano()},
		{group: "sse", connected: true, got: 100, hist: h1, lastRecv: start.Add(time.Second).UnixNano()},
		{group: "sse", connected: true, got: 90, hist: h1, loss: lossReport{Lost: 10, Gaps: 2}, dropped: 10,
			lastRecv: start.Add(time.Second).UnixNano()},
		{group: "sse-slow", connected: false, hist: &histogram{}, err: errTest},
	}
	got := groupResults(results, 100, start)
	if len(got) != 4 || got[0].Name != "sse" || got[1].Name != "sse-slow" || got[2].Name != "ws" || got[3].Name != "all" {
		t.Fatalf("groups %+v", got)
	}
	all := got[3]
	if all.Subscribers != 3 || all.Received != 290 || all.Lost != 10 || all.Rate != 80 || all.Latency.P50 > 1.01 || all.Latency.P90 < 2.97 {
		t.Errorf("all row (reading subscribers, slow ones apart) %+v", all)
	}
	sse := got[0]
	if sse.Subscribers != 2 || sse.Received != 190 || sse.Lost != 10 || sse.Gaps != 2 || sse.Dropped != 10 {
		t.Errorf("sse group %+v", sse)
	}
	if sse.Rate != 95 {
		t.Errorf("sse rate %v, want mean of 100/s and 90/s", sse.Rate)
	}
	if sse.Latency.P50 < 0.99 || sse.Latency.P50 > 1.01 || got[2].Latency.P99 < 2.97 || got[2].Latency.P99 > 3.03 {
		t.Errorf("latencies sse %+v ws %+v", sse.Latency, got[2].Latency)
	}
	if got[1].Failed != 1 || got[1].FirstError != errTest.Error() || got[1].Connected != 0 {
		t.Errorf("failed group %+v", got[1])
	}
}

func TestReportOutputs(t *testing.T) {
	rep := &Report{
		Label: "scenario 1", Run: "abcd",
		Load:   &LoadReport{Addr: "127.0.0.1:1", Proto: "tcp", Kind: "rfc3164", Conns: 4, Size: 140, Lines: 1000000, Seconds: 2, Rate: 500000},
		Groups: []GroupReport{{Name: "sse", Subscribers: 1, Connected: 1, Received: 1000000, Rate: 480000, Latency: Latency{P99: 4.5}}},
		Procs:  []ProcReport{{PID: 1, Name: "logviewer", CPUSeconds: 1.5, CPUPercent: 75, RSSPeakMiB: 30}},
		Idle:   &IdleReport{Clients: 10, Opened: 10, Procs: []IdleRSS{{PID: 1, Name: "logviewer", KiBPerClient: 12.5}}},
		Errors: []string{"connection 2: broken"},
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario 1 (run abcd)", "500,000 lines/s", "480,000", "4.50", "logviewer", "12.5", "error: connection 2: broken"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Groups[0].Latency.P99 != 4.5 || back.Load.Rate != 500000 || back.Idle.Procs[0].KiBPerClient != 12.5 {
		t.Errorf("JSON round trip lost figures: %s", js.String())
	}
}

func TestWorstSeconds(t *testing.T) {
	s := newSubscriber(subSSE, "", "r", false, nil)
	start := time.Unix(100, 0)
	s.noteSecond(start.UnixNano(), 5) // before the load start is set: ignored
	s.loadStart.Store(start.UnixNano())
	s.noteSecond(start.Add(-time.Second).UnixNano(), 9) // sent before the load
	s.noteSecond(start.UnixNano(), int64(2*time.Millisecond))
	s.noteSecond(start.Add(500*time.Millisecond).UnixNano(), int64(time.Millisecond))
	s.noteSecond(start.Add(3*time.Second).UnixNano(), int64(400*time.Millisecond))
	s.noteSecond(start.Add(4*time.Second).UnixNano(), int64(3*time.Millisecond))
	s.noteSecond(start.Add(maxSeconds*time.Second).UnixNano(), 1) // beyond the record
	other := []int64{0, int64(50 * time.Millisecond)}
	got := worstSeconds(mergeSeconds(append([]int64(nil), s.secMax...), other), 3)
	want := []SecondMax{{3, 400}, {1, 50}, {4, 3}}
	if len(got) != len(want) {
		t.Fatalf("worstSeconds = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("worst %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
