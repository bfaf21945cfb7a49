package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
	"github.com/logviewer/logviewer/publish"
	"github.com/prometheus/client_golang/prometheus"
)

// wait is the deadline for conditions the tests wait for.
const wait = 10 * time.Second

// fixture is a Server on a loopback port over a real memory hub.
type fixture struct {
	srv  *Server
	hub  *publish.Memory
	url  string // http://127.0.0.1:port
	host string // 127.0.0.1:port
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error // Serve's result
}

// gathered sums the samples of the metric family name, read from the
// registry (so it works after the server stopped).
func (f *fixture) gathered(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// startServer starts a Server with cfg (Addr is set to a free loopback
// port) and stops it when the test ends.
func startServer(t testing.TB, cfg Config, tweaks ...func(*Server)) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	hub := publish.NewMemory(publish.MemoryConfig{History: 1000, Metrics: m})
	return startServerOn(t, cfg, hub, m, reg, tweaks...)
}

// startServerOn is startServer over any bus; tweaks adjust the Server
// before it listens.
func startServerOn(t testing.TB, cfg Config, bus publish.Bus, m *metrics.Metrics, reg *prometheus.Registry, tweaks ...func(*Server)) *fixture {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLogOut(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := NewServer(cfg, bus, m, reg)
	for _, tw := range tweaks {
		tw(srv)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{srv: srv, url: "http://" + srv.Addr().String(), host: srv.Addr().String(), reg: reg, stop: cancel, done: make(chan error, 1)}
	f.hub, _ = bus.(*publish.Memory)
	go func() { f.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Serve did not return")
		}
		_ = bus.Close()
	})
	return f
}

// publish publishes records with short_message msgs[i] to channel.
func (f *fixture) publish(t testing.TB, channel string, msgs ...string) {
	t.Helper()
	for _, msg := range msgs {
		gelf := fmt.Appendf(nil, `{"version":"1.1","short_message":%q}`, msg)
		if err := f.hub.Publish(context.Background(), channel, gelf); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// seq returns "prefix0" .. "prefix<n-1>".
func seq(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(from+i)
	}
	return out
}

// lineStream reads the raw lines of a streaming response.
type lineStream struct {
	resp  *http.Response
	lines chan string // closed at end of stream
}

// openLines GETs url with header pairs "Name: value" and reads its body
// line by line in the background until the test ends.
func openLines(t testing.TB, url string, headers ...string) *lineStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("get %s: status %d: %s", url, resp.StatusCode, b)
	}
	ls := &lineStream{resp: resp, lines: make(chan string, 1<<16)}
	go func() {
		defer close(ls.lines)
		defer resp.Body.Close()
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case ls.lines <- strings.TrimSuffix(line, "\n"):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ls
}

// next returns the next line; ok is false at the end of the stream.
func (ls *lineStream) next(t testing.TB) (line string, ok bool) {
	t.Helper()
	select {
	case line, ok = <-ls.lines:
		return line, ok
	case <-time.After(wait):
		t.Fatalf("no line within %v", wait)
	}
	return "", false
}

// mustNext returns the next line, failing at the end of the stream.
func (ls *lineStream) mustNext(t testing.TB) string {
	t.Helper()
	line, ok := ls.next(t)
	if !ok {
		t.Fatalf("stream ended")
	}
	return line
}

// shortMessages reads n records from an SSE stream, failing on notices.
func shortMessages(t testing.TB, s *testsupport.SSEStream, n int) (msgs, ids []string) {
	t.Helper()
	for range n {
		ev := s.Next(t, wait)
		if ev.Event != "" {
			t.Fatalf("got a %q notice %s, want a record", ev.Event, ev.Data)
		}
		f := ev.Fields(t)
		msgs = append(msgs, fmt.Sprint(f["short_message"]))
		ids = append(ids, ev.ID)
		if f["_event_id"] != ev.ID {
			t.Fatalf("_event_id %v != id %q", f["_event_id"], ev.ID)
		}
	}
	return msgs, ids
}

// metricsText returns the /metrics body.
func metricsText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gauge reads one sample ("name{labels}") from /metrics; -1 when absent.
func gauge(t testing.TB, url, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, url), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func TestListenTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hub := publish.NewMemory(publish.MemoryConfig{})
	defer hub.Close()
	srv := NewServer(Config{Addr: l.Addr().String()}, hub, nil, nil)
	err = srv.Listen()
	if err == nil {
		t.Fatal("Listen on a taken port succeeded")
	}
	var op *net.OpError
	if !strings.Contains(err.Error(), "listen http "+l.Addr().String()) || !errors.As(err, &op) {
		t.Fatalf("Listen error %q does not say which address or does not wrap the cause", err)
	}
	if srv.Addr() != nil {
		t.Fatalf("Addr after a failed Listen = %v, want nil", srv.Addr())
	}
}

func TestChannelsAPI(t *testing.T) {
	f := startServer(t, Config{})
	var empty struct {
		Channels []publish.ChannelInfo `json:"channels"`
	}
	testsupport.GetJSON(t, f.url+"/api/channels", &empty)
	if empty.Channels == nil || len(empty.Channels) != 0 {
		t.Fatalf("channels before any record = %#v, want an empty list", empty.Channels)
	}

	f.publish(t, "web-1", "a", "b")
	f.publish(t, "db", "c")
	var got struct {
		Channels []publish.ChannelInfo `json:"channels"`
	}
	// The listing is at most channelsTTL old: the new channels show within it.
	testsupport.Eventually(t, wait, func() bool {
		resp, err := http.Get(f.url + "/api/channels")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return len(got.Channels) == 2
	}, "the channels did not show: %v", func() any { return got.Channels })
	if len(got.Channels) != 2 || got.Channels[0].Name != "db" || got.Channels[0].Count != 1 ||
		got.Channels[1].Name != "web-1" || got.Channels[1].Count != 2 || got.Channels[1].LastSeen.IsZero() {
		t.Fatalf("channels = %+v", got.Channels)
	}
}

func TestHealthz(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		f := startServer(t, Config{})
		var h map[string]string
		testsupport.GetJSON(t, f.url+"/healthz", &h)
		if h["status"] != "ok" || len(h) != 1 {
			t.Fatalf("healthz = %v", h)
		}
	})
	t.Run("degraded", func(t *testing.T) {
		// A Redis bus whose Redis is not there: the daemon serves, degraded.
		port := testsupport.FreePort(t)
		reg := prometheus.NewRegistry()
		m := metrics.New(reg)
		bus, err := publish.NewRedis(context.Background(), publish.RedisConfig{
			URL: "redis://127.0.0.1:" + strconv.Itoa(port), Role: publish.RoleStream, Metrics: m,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		f := startServerOn(t, Config{}, bus, m, reg)
		var h map[string]string
		testsupport.GetJSON(t, f.url+"/healthz", &h)
		if h["status"] != "degraded" || h["error"] == "" {
			t.Fatalf("healthz with Redis away = %v, want degraded with an error", h)
		}
	})
}

func TestMetricsClients(t *testing.T) {
	f := startServer(t, Config{})
	for _, kind := range []string{"sse", "ws"} {
		if v := gauge(t, f.url, `logviewer_stream_clients{kind="`+kind+`"}`); v != 0 {
			t.Fatalf("logviewer_stream_clients{kind=%q} = %v before any client, want 0", kind, v)
		}
	}
	sse := testsupport.OpenSSE(t, f.url+"/sse/app")
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 1
	}, "logviewer_stream_clients{kind=\"sse\"} != 1 with one SSE client")
	ws := dialWS(t, f, "/ws/app", nil)
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 1
	}, "logviewer_stream_clients{kind=\"ws\"} != 1 with one WebSocket client")
	if !strings.Contains(metricsText(t, f.url), "# TYPE logviewer_stream_clients gauge") {
		t.Fatal("/metrics has no logviewer_stream_clients gauge")
	}
	sse.Close()
	ws.CloseNow()
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 0 &&
			gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 0
	}, "clients gauge not back to 0 after both clients left")
}

func TestBadStreamRequests(t *testing.T) {
	f := startServer(t, Config{})
	long := strings.Repeat("a", maxPatternLen+1)
	cases := []struct {
		name, path string
		header     string
		want       int
	}{
		{"negative tail", "/sse/app?tail=-1", "", http.StatusBadRequest},
		{"word tail", "/sse/app?tail=many", "", http.StatusBadRequest},
		{"unknown format", "/sse/app?format=xml", "", http.StatusBadRequest},
		{"long pattern", "/sse/" + long, "", http.StatusBadRequest},
		{"control byte in pattern", "/sse/a%01b", "", http.StatusBadRequest},
		{"long since", "/sse/app?since=" + strings.Repeat("1", maxIDLen+1), "", http.StatusBadRequest},
		{"long Last-Event-ID", "/sse/app", "Last-Event-ID: " + strings.Repeat("1", maxIDLen+1), http.StatusBadRequest},
		{"ws negative tail", "/ws/app?tail=-5", "", http.StatusBadRequest},
		{"no pattern", "/sse/", "", http.StatusNotFound},
		{"post", "POST /sse/app", "", http.StatusMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, path := http.MethodGet, tc.path
			if m, p, ok := strings.Cut(tc.path, " "); ok {
				method, path = m, p
			}
			req, err := http.NewRequest(method, f.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k, v, ok := strings.Cut(tc.header, ":"); ok {
				req.Header.Set(k, strings.TrimSpace(v))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tc.want)
			}
		})
	}
}

func testLogOut() io.Writer {
	if os.Getenv("STREAM_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

func TestParseStreamRequest(t *testing.T) {
	cases := []struct {
		name, target, lastEventID string
		pattern, since            string
		tail                      int
	}{
		{"plain", "/sse/app", "", "app", "", 0},
		{"tail", "/sse/app?tail=50", "", "app", "", 50},
		{"tail clamped", "/sse/app?tail=999999999", "", "app", "", maxTail},
		{"since", "/sse/app?since=5-7", "", "app", "5-7", 0},
		{"header first", "/sse/app?since=5-7", "5-9", "app", "5-9", 0},
		{"escaped glob", "/sse/web-%2A", "", "web-*", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			var got streamRequest
			var err error
			mux.HandleFunc("GET /sse/{channel}", func(_ http.ResponseWriter, r *http.Request) {
				got, err = parseStreamRequest(r)
			})
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.lastEventID != "" {
				r.Header.Set("Last-Event-ID", tc.lastEventID)
			}
			mux.ServeHTTP(httptest.NewRecorder(), r)
			if err != nil {
				t.Fatal(err)
			}
			if got.pattern != tc.pattern || got.opts.Since != tc.since || got.opts.Tail != tc.tail || got.opts.QueueSize != queueSize {
				t.Fatalf("got %+v, want pattern %q since %q tail %d", got, tc.pattern, tc.since, tc.tail)
			}
		})
	}
}
