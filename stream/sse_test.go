package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
	"github.com/logviewer/logviewer/publish"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSSEFraming(t *testing.T) {
	f := startServer(t, Config{})
	f.publish(t, "app", "one", "two")
	ls := openLines(t, f.url+"/sse/app?tail=10")
	h := ls.resp.Header
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if l := ls.mustNext(t); l != "retry: 2000" {
		t.Fatalf("first line %q, want retry: 2000", l)
	}
	if l := ls.mustNext(t); l != "" {
		t.Fatalf("line after retry %q, want empty", l)
	}
	var ids []string
	for _, msg := range []string{"one", "two"} {
		id, ok := strings.CutPrefix(ls.mustNext(t), "id: ")
		if !ok || id == "" {
			t.Fatalf("record does not start with an id line")
		}
		data, ok := strings.CutPrefix(ls.mustNext(t), "data: ")
		if !ok {
			t.Fatalf("no data line after id %s", id)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(data), &rec); err != nil {
			t.Fatalf("data is not JSON: %v: %s", err, data)
		}
		if rec["short_message"] != msg || rec["_event_id"] != id || rec["_channel"] != "app" {
			t.Fatalf("record %s with id %s, want %s on app", data, id, msg)
		}
		if !strings.HasPrefix(data, `{"_event_id":`) {
			t.Fatalf("data %s is not the record's JSON as published", data)
		}
		if l := ls.mustNext(t); l != "" {
			t.Fatalf("record not ended by an empty line: %q", l)
		}
		ids = append(ids, id)
	}
	if ids[0] >= ids[1] && len(ids[0]) == len(ids[1]) {
		t.Fatalf("ids %v do not increase", ids)
	}
	// A live record follows the backfill.
	f.publish(t, "app", "three")
	if l := ls.mustNext(t); !strings.HasPrefix(l, "id: ") {
		t.Fatalf("live record starts with %q", l)
	}
	if l := ls.mustNext(t); !strings.Contains(l, `"short_message":"three"`) {
		t.Fatalf("live record data %q", l)
	}
}

// TestSinkFormat checks the exact bytes each kind of event becomes.
func TestSinkFormat(t *testing.T) {
	rec := publish.Record{Channel: "app", ID: "17-3", JSON: []byte(`{"_event_id":"17-3","_channel":"app","a":1}`)}
	noID := publish.Record{Channel: "app", JSON: []byte(`{"_channel":"app","a":1}`)}
	multiline := publish.Record{Channel: "app", ID: "17-4", JSON: []byte("{\"a\":\n1,\r\n\"b\":2}")}
	cases := []struct {
		name   string
		ndjson bool
		write  func(o *sseSink) error
		want   string
	}{
		{"sse record", false, func(o *sseSink) error { return o.record(&rec) },
			"id: 17-3\ndata: {\"_event_id\":\"17-3\",\"_channel\":\"app\",\"a\":1}\n\n"},
		{"sse record without id", false, func(o *sseSink) error { return o.record(&noID) },
			"data: {\"_channel\":\"app\",\"a\":1}\n\n"},
		{"sse record with line breaks", false, func(o *sseSink) error { return o.record(&multiline) },
			"id: 17-4\ndata: {\"a\": 1,  \"b\":2}\n\n"},
		{"sse dropped", false, func(o *sseSink) error { return o.dropped(42, nil) },
			"event: dropped\ndata: {\"dropped\":42}\n\n"},
		{"sse dropped by channel", false, func(o *sseSink) error { return o.dropped(5, map[string]uint64{"web-1": 3, "": 2}) },
			"event: dropped\ndata: {\"dropped\":5,\"channels\":{\"\":2,\"web-1\":3}}\n\n"},
		{"sse gap", false, func(o *sseSink) error { return o.gap(nil) },
			"event: gap\ndata: {\"gap\":true}\n\n"},
		{"sse gap of two channels", false, func(o *sseSink) error { return o.gap([]string{"db-1", "web-1"}) },
			"event: gap\ndata: {\"gap\":true,\"channels\":[\"db-1\",\"web-1\"]}\n\n"},
		{"sse heartbeat", false, func(o *sseSink) error { return o.heartbeat() }, ": ping\n\n"},
		{"ndjson record", true, func(o *sseSink) error { return o.record(&rec) },
			"{\"_event_id\":\"17-3\",\"_channel\":\"app\",\"a\":1}\n"},
		{"ndjson record with line breaks", true, func(o *sseSink) error { return o.record(&multiline) },
			"{\"a\": 1,  \"b\":2}\n"},
		{"ndjson dropped", true, func(o *sseSink) error { return o.dropped(7, nil) }, "{\"dropped\":7}\n"},
		{"ndjson gap", true, func(o *sseSink) error { return o.gap(nil) }, "{\"gap\":true}\n"},
		{"ndjson heartbeat", true, func(o *sseSink) error { return o.heartbeat() }, "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			o := &sseSink{w: &batchWriter{w: &b}, ndjson: tc.ndjson}
			if err := tc.write(o); err != nil {
				t.Fatal(err)
			}
			if err := o.w.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Fatalf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}

func TestSSEResume(t *testing.T) {
	f := startServer(t, Config{})
	f.publish(t, "app", seq("m", 0, 10)...)
	first := testsupport.OpenSSE(t, f.url+"/sse/app?tail=10")
	msgs, ids := shortMessages(t, first, 10)
	if !slices.Equal(msgs, seq("m", 0, 10)) {
		t.Fatalf("backfill %v", msgs)
	}
	first.Close()
	f.publish(t, "app", seq("m", 10, 5)...)

	cases := []struct {
		name    string
		query   string
		headers []string
	}{
		{"Last-Event-ID header", "", []string{"Last-Event-ID: " + ids[4]}},
		{"since query", "?since=" + url.QueryEscape(ids[4]), nil},
		// A reconnecting EventSource sends Last-Event-ID with its first URL.
		{"header before since and tail", "?since=" + url.QueryEscape(ids[0]) + "&tail=2", []string{"Last-Event-ID: " + ids[4]}},
	}
	var lives []string // live records of the earlier cases, also after ids[4]
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testsupport.OpenSSE(t, f.url+"/sse/app"+tc.query, tc.headers...)
			want := append(seq("m", 5, 10), lives...)
			got, _ := shortMessages(t, s, len(want))
			if !slices.Equal(got, want) {
				t.Fatalf("resumed after %s: %v, want %v", ids[4], got, want)
			}
			// Nothing more is queued: the next event is the next live record.
			f.publish(t, "app", "live-"+tc.name)
			lives = append(lives, "live-"+tc.name)
			got, _ = shortMessages(t, s, 1)
			if got[0] != "live-"+tc.name {
				t.Fatalf("after the resumed records: %q (a duplicate?)", got[0])
			}
		})
	}
}

func TestSSETail(t *testing.T) {
	f := startServer(t, Config{})
	f.publish(t, "app", seq("m", 0, 20)...)
	f.publish(t, "other", "not mine")
	s := testsupport.OpenSSE(t, f.url+"/sse/app?tail=5")
	f.publish(t, "app", "live")
	got, _ := shortMessages(t, s, 6)
	if want := append(seq("m", 15, 5), "live"); !slices.Equal(got, want) {
		t.Fatalf("tail=5 then live: %v, want %v", got, want)
	}
}

func TestSSEGap(t *testing.T) {
	f := startServer(t, Config{})
	f.publish(t, "app", "a", "b")
	// An ID from another epoch (an earlier life of the hub).
	s := testsupport.OpenSSE(t, f.url+"/sse/app", "Last-Event-ID: 1-5")
	ev := s.Next(t, wait)
	if ev.Event != "gap" || ev.Data != `{"gap":true}` || ev.ID != "" {
		t.Fatalf("first event %+v, want a gap notice", ev)
	}
	got, _ := shortMessages(t, s, 2)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after the gap: %v, want the oldest records kept", got)
	}
}

func TestNDJSON(t *testing.T) {
	cases := []struct {
		name    string
		query   string
		headers []string
	}{
		{"query", "?format=ndjson&since=1-1", nil},
		{"accept header", "?since=1-1", []string{"Accept: application/x-ndjson"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startServer(t, Config{})
			f.publish(t, "app", "a", "b")
			ls := openLines(t, f.url+"/sse/app"+tc.query, tc.headers...)
			if ct := ls.resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Fatalf("Content-Type %q", ct)
			}
			if l := ls.mustNext(t); l != `{"gap":true}` {
				t.Fatalf("first line %q, want the gap notice", l)
			}
			for _, want := range []string{"a", "b"} {
				l := ls.mustNext(t)
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("line %q is not JSON: %v", l, err)
				}
				if rec["short_message"] != want || rec["_event_id"] == nil || rec["_channel"] != "app" {
					t.Fatalf("line %q, want record %s", l, want)
				}
			}
		})
	}
}

func TestGlobChannel(t *testing.T) {
	f := startServer(t, Config{})
	f.publish(t, "web-1", "w1")
	f.publish(t, "db", "d1")
	f.publish(t, "web-2", "w2")
	cases := []struct {
		name, path string
		want       []string
	}{
		{"prefix glob", "/sse/web-*?tail=10", []string{"w1", "w2", "w3"}},
		{"escaped glob", "/sse/web-%2A?tail=10", []string{"w1", "w2", "w3"}},
		{"all", "/sse/*?tail=10", []string{"w1", "d1", "w2", "d2", "w3"}},
		{"one channel", "/sse/db?tail=10", []string{"d1", "d2"}},
		{"question mark glob", "/sse/web-%3F?tail=10", []string{"w1", "w2", "w3"}},
	}
	streams := make([]*testsupport.SSEStream, len(cases))
	for i, tc := range cases {
		streams[i] = testsupport.OpenSSE(t, f.url+tc.path)
	}
	f.publish(t, "db", "d2")
	f.publish(t, "web-3", "w3")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := shortMessages(t, streams[i], len(tc.want))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSSEHeartbeat(t *testing.T) {
	f := startServer(t, Config{Heartbeat: 30 * time.Millisecond})
	ls := openLines(t, f.url+"/sse/quiet")
	pings := 0
	for pings < 3 {
		l := ls.mustNext(t)
		switch l {
		case ": ping":
			pings++
		case "", "retry: 2000":
		default:
			t.Fatalf("unexpected line %q on an idle stream", l)
		}
	}
	// Records still flow after heartbeats.
	f.publish(t, "quiet", "hello")
	for {
		l := ls.mustNext(t)
		if strings.HasPrefix(l, "data: ") {
			if !strings.Contains(l, `"hello"`) {
				t.Fatalf("data %q", l)
			}
			break
		}
	}
}

// TestSlowClientDoesNotHoldBackFastOne: one client never reads while many
// records flow; another gets every record in order with no notice, and
// the slow one is told of its losses once it reads.
func TestSlowClientDoesNotHoldBackFastOne(t *testing.T) {
	const (
		total = 60_000
		chunk = 2_000 // published, then awaited on the fast client
	)
	// The slow client stalls for as long as the test publishes; it must not
	// be taken for a dead peer meanwhile.
	f := startServer(t, Config{}, func(s *Server) { s.writeTimeout = 5 * time.Minute })
	slow, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /sse/* HTTP/1.1\r\nHost: %s\r\n\r\n", f.host)
	fast := testsupport.OpenSSE(t, f.url+"/sse/*")
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 2
	}, "both SSE clients connected")

	// 60,000 records of over 1 KiB overflow the socket buffers (a few MiB)
	// and the slow client's queue (queueSize records).
	pad := strings.Repeat("x", 1024)
	gelf := make([]byte, 0, 2048)
	for sent := 0; sent < total; sent += chunk {
		for i := sent; i < sent+chunk; i++ {
			gelf = fmt.Appendf(gelf[:0], `{"short_message":"line %d","pad":%q}`, i, pad)
			if err := f.hub.Publish(t.Context(), "app", gelf); err != nil {
				t.Fatal(err)
			}
		}
		for i := sent; i < sent+chunk; i++ {
			ev := fast.Next(t, wait)
			if ev.Event != "" {
				t.Fatalf("fast client got a %q notice %s", ev.Event, ev.Data)
			}
			var rec struct {
				Msg string `json:"short_message"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &rec); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("line %d", i); rec.Msg != want {
				t.Fatalf("fast client: %q, want %q", rec.Msg, want)
			}
		}
	}

	// Now the slow client reads: somewhere in its stream is a dropped notice.
	_ = slow.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("slow client response: %v", err)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	seen := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("slow client read %d records and no dropped notice: %v", seen, err)
		}
		if strings.HasPrefix(line, "data: {\"_event_id\"") {
			seen++
		}
		if line == "event: dropped\n" {
			data, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(data, `data: {"dropped":`) {
				t.Fatalf("dropped notice data %q: %v", data, err)
			}
			break
		}
	}
	if seen >= total {
		t.Fatalf("slow client saw all %d records before a dropped notice", seen)
	}
}

// TestSSEHead: HEAD gets the stream's headers and an empty body at once.
func TestSSEHead(t *testing.T) {
	f := startServer(t, Config{})
	resp, err := http.Head(f.url + "/sse/app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HEAD: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestSSEOwnConnection: over HTTP/1.1 an SSE stream answers with a plain
// body that ends with the connection (no chunked encoding), with the
// headers every response gets, and a client that hangs up is let go at
// once, even on a silent channel.
func TestSSEOwnConnection(t *testing.T) {
	f := startServer(t, Config{Heartbeat: time.Hour})
	conn, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /sse/app HTTP/1.1\r\nHost: %s\r\n\r\n", f.host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("status %d, proto %s, transfer encoding %v, close %v; want 200 over HTTP/1.1, not chunked, closing",
			resp.StatusCode, resp.Proto, resp.TransferEncoding, resp.Close)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date header")
	}
	f.publish(t, "app", "over a taken connection")
	body := bufio.NewReader(resp.Body)
	for {
		l, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the record: %v", err)
		}
		if strings.Contains(l, `"short_message":"over a taken connection"`) {
			break
		}
	}
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 1
	}, "client counted")
	conn.Close()
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 0
	}, "client let go after it hung up (the heartbeat is an hour away)")
	if n := f.srv.peers.Len(); n != 0 {
		t.Errorf("peer watcher still watches %d connections", n)
	}
}

// ctxBus is a memory bus that hands the context of its last Subscribe to
// subscribed.
type ctxBus struct {
	*publish.Memory
	subscribed chan context.Context
}

func (b *ctxBus) Subscribe(ctx context.Context, pattern string, opts publish.SubscribeOptions) (publish.Subscription, error) {
	b.subscribed <- ctx
	return b.Memory.Subscribe(ctx, pattern, opts)
}

// TestSubscriptionLivesAsLongAsTheStream: a stream's handler returns once
// its connection is taken (SSE) or upgraded (WebSocket); the context its
// subscription got (which a bus may read history under) must live until
// the client goes, and end then.
func TestSubscriptionLivesAsLongAsTheStream(t *testing.T) {
	for _, kind := range []string{"sse", "ws"} {
		t.Run(kind, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := metrics.New(reg)
			bus := &ctxBus{Memory: publish.NewMemory(publish.MemoryConfig{History: 10, Metrics: m}), subscribed: make(chan context.Context, 1)}
			f := startServerOn(t, Config{}, bus, m, reg)
			var closeClient func()
			if kind == "sse" {
				conn, err := net.Dial("tcp", f.host)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "GET /sse/app HTTP/1.1\r\nHost: %s\r\n\r\n", f.host)
				if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
					t.Fatal(err)
				}
				closeClient = func() { conn.Close() }
			} else {
				c := dialWS(t, f, "/ws/app", nil)
				closeClient = func() { c.CloseNow() }
			}
			ctx := <-bus.subscribed
			testsupport.Eventually(t, wait, func() bool {
				return gauge(t, f.url, `logviewer_stream_clients{kind="`+kind+`"}`) == 1
			}, "client counted")
			time.Sleep(100 * time.Millisecond) // the handler has long returned
			if err := ctx.Err(); err != nil {
				t.Fatalf("the subscription's context ended while the client streams: %v", err)
			}
			closeClient()
			select {
			case <-ctx.Done():
			case <-time.After(wait):
				t.Fatal("the subscription's context outlived the client")
			}
		})
	}
}
