package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// dialWS opens a WebSocket to path on f with extra handshake headers and
// closes it when the test ends.
func dialWS(t testing.TB, f *fixture, path string, header http.Header, opts ...func(*websocket.DialOptions)) *websocket.Conn {
	t.Helper()
	c, err := tryDialWS(t, f, path, header, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

func tryDialWS(t testing.TB, f *fixture, path string, header http.Header, opts ...func(*websocket.DialOptions)) (*websocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	o := &websocket.DialOptions{HTTPHeader: header}
	for _, fn := range opts {
		fn(o)
	}
	c, resp, err := websocket.Dial(ctx, "ws://"+f.host+path, o)
	if err != nil {
		if resp != nil && resp.Body != nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return nil, &dialError{status: resp.StatusCode, body: string(b), err: err}
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c, nil
}

type dialError struct {
	status int
	body   string
	err    error
}

func (e *dialError) Error() string { return e.err.Error() + ": " + e.body }

// readFrame reads one text frame as a JSON object.
func readFrame(t testing.TB, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame is not a JSON object: %v: %s", err, b)
	}
	return m
}

func TestWSFrames(t *testing.T) {
	f := startServer(t, Config{})
	f.publish(t, "web-1", "old", "a", "b")
	f.publish(t, "db", "not mine")
	c := dialWS(t, f, "/ws/web-*?tail=2", nil)
	f.publish(t, "web-2", "live")
	var ids []string
	for _, want := range []struct{ msg, channel string }{{"a", "web-1"}, {"b", "web-1"}, {"live", "web-2"}} {
		m := readFrame(t, c)
		id, _ := m["_event_id"].(string)
		if m["short_message"] != want.msg || m["_channel"] != want.channel || id == "" {
			t.Fatalf("frame %v, want %s on %s with an _event_id", m, want.msg, want.channel)
		}
		ids = append(ids, id)
	}

	t.Run("since", func(t *testing.T) {
		c := dialWS(t, f, "/ws/web-*?since="+ids[0], nil)
		for _, want := range []string{"b", "live"} {
			if m := readFrame(t, c); m["short_message"] != want {
				t.Fatalf("resumed frame %v, want %s", m, want)
			}
		}
	})
	t.Run("gap", func(t *testing.T) {
		c := dialWS(t, f, "/ws/db?since=1-1", nil)
		if m := readFrame(t, c); len(m) != 1 || m["gap"] != true {
			t.Fatalf("first frame %v, want {\"gap\":true}", m)
		}
		if m := readFrame(t, c); m["short_message"] != "not mine" {
			t.Fatalf("frame after gap %v", m)
		}
	})
}

// TestWSDroppedNotice: a WebSocket client that does not read while
// records flow gets {"dropped":N} when it reads again.
func TestWSDroppedNotice(t *testing.T) {
	// The client stalls for as long as the test publishes (seconds under
	// -race on a busy machine); it must not be taken for a dead peer.
	f := startServer(t, Config{}, func(s *Server) { s.writeTimeout = 5 * time.Minute })
	c := dialWS(t, f, "/ws/app", nil)
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 1
	}, "ws client connected")
	pad := strings.Repeat("y", 1024)
	for i := range 3 * queueSize {
		f.publish(t, "app", pad+string(rune('a'+i%26)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for n := 0; ; n++ {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d frames, no dropped notice: %v", n, err)
		}
		if strings.HasPrefix(string(b), `{"dropped":`) {
			var m struct {
				Dropped  uint64            `json:"dropped"`
				Channels map[string]uint64 `json:"channels"`
			}
			if err := json.Unmarshal(b, &m); err != nil || m.Dropped == 0 || m.Channels["app"] != m.Dropped {
				t.Fatalf("notice %s: %v; want the dropped records counted, all of channel app", b, err)
			}
			return
		}
	}
}

func TestWSHeartbeat(t *testing.T) {
	f := startServer(t, Config{Heartbeat: 30 * time.Millisecond})
	var pings atomic.Int32
	c := dialWS(t, f, "/ws/quiet", nil, func(o *websocket.DialOptions) {
		o.OnPingReceived = func(context.Context, []byte) bool { pings.Add(1); return true }
	})
	// The client must read for pings to be answered.
	frames := make(chan map[string]any, 1)
	go func() {
		_, b, err := c.Read(context.Background())
		if err == nil {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			frames <- m
		}
		close(frames)
	}()
	testsupport.Eventually(t, wait, func() bool { return pings.Load() >= 3 }, "fewer than 3 pings on an idle WebSocket")
	f.publish(t, "quiet", "hello")
	select {
	case m := <-frames:
		if m["short_message"] != "hello" {
			t.Fatalf("frame after pings %v", m)
		}
	case <-time.After(wait):
		t.Fatal("no frame after the pings")
	}
}

func TestCrossOrigin(t *testing.T) {
	cases := []struct {
		name   string
		allow  []string
		origin string // "" sends none; "SELF" is the server's own origin
		ok     bool
	}{
		{"no origin (curl)", nil, "", true},
		{"same host", nil, "SELF", true},
		{"other site", nil, "http://evil.example", false},
		{"other port", nil, "http://127.0.0.1:1", false},
		{"null origin", nil, "null", false},
		{"allowed host", []string{"viewer.example"}, "https://viewer.example", true},
		{"allowed glob", []string{"*.example"}, "https://a.example", true},
		{"allowed scheme", []string{"https://viewer.example"}, "https://viewer.example", true},
		{"wrong scheme", []string{"https://viewer.example"}, "http://viewer.example", false},
		{"not in list", []string{"viewer.example"}, "https://other.example", false},
		{"star", []string{"*"}, "http://evil.example", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startServer(t, Config{AllowOrigins: tc.allow})
			origin := tc.origin
			if origin == "SELF" {
				origin = f.url
			}
			header := http.Header{}
			if origin != "" {
				header.Set("Origin", origin)
			}

			req, err := http.NewRequest(http.MethodGet, f.url+"/sse/app", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = header.Clone()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok && resp.StatusCode != http.StatusOK {
				t.Errorf("sse: status %d, want 200", resp.StatusCode)
			}
			if !tc.ok {
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "not allowed") {
					t.Errorf("sse: status %d %q, want 403 saying the origin is not allowed", resp.StatusCode, b)
				}
			}
			cancel()
			resp.Body.Close()

			c, err := tryDialWS(t, f, "/ws/app", header)
			switch {
			case tc.ok && err != nil:
				t.Errorf("ws: %v, want accepted", err)
			case !tc.ok && err == nil:
				c.CloseNow()
				t.Errorf("ws accepted, want refused")
			case !tc.ok:
				de, ok := err.(*dialError)
				if !ok || de.status != http.StatusForbidden || !strings.Contains(de.body, "not allowed") {
					t.Errorf("ws refusal %v, want 403 saying the origin is not allowed", err)
				}
			}
		})
	}
}

// TestWSDeflate: permessage-deflate is negotiated only when the server
// allows it and the client offers it, and compressed records read back
// whole.
func TestWSDeflate(t *testing.T) {
	cases := []struct {
		server string
		client websocket.CompressionMode
		want   bool
	}{
		{"off", websocket.CompressionContextTakeover, false},
		{"context", websocket.CompressionDisabled, false},
		{"context", websocket.CompressionContextTakeover, true},
		{"message", websocket.CompressionNoContextTakeover, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.server, tc.client), func(t *testing.T) {
			f := startServer(t, Config{WSDeflate: tc.server})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws://"+f.host+"/ws/app", &websocket.DialOptions{CompressionMode: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if got := strings.Contains(ext, "permessage-deflate"); got != tc.want {
				t.Fatalf("Sec-WebSocket-Extensions %q: deflate %v, want %v", ext, got, tc.want)
			}
			testsupport.Eventually(t, wait, func() bool {
				return gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 1
			}, "ws client connected")
			long := strings.Repeat("compress me ", 40)
			for i := range 3 {
				f.publish(t, "app", fmt.Sprintf("%s%d", long, i))
			}
			for i := range 3 {
				if m := readFrame(t, c); m["short_message"] != fmt.Sprintf("%s%d", long, i) {
					t.Fatalf("frame %d: %v", i, m)
				}
			}
		})
	}
}
