package stream

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestMaxClients: past MaxClients a new stream gets 503 with Retry-After,
// counted; once one closes, a new one is served again.
func TestMaxClients(t *testing.T) {
	f := startServer(t, Config{MaxClients: 2})
	a := testsupport.OpenSSE(t, f.url+"/sse/*")
	testsupport.OpenSSE(t, f.url+"/sse/*")
	resp, err := http.Get(f.url + "/sse/*")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third client: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := gauge(t, f.url, `logviewer_stream_clients_closed_total{reason="max_clients"}`); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}
	// The WebSocket endpoint shares the bound.
	resp, err = http.Get(f.url + "/ws/*")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("websocket past the bound: %d, want 503", resp.StatusCode)
	}
	a.Close()
	testsupport.Eventually(t, wait, func() bool {
		resp, err := http.Get(f.url + "/sse/*?format=ndjson")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "a client is served again after one left")
}

// TestSlowClientEvicted: a client that stops reading is cut off once a
// write times out, logged and counted as slow, not as gone; a client that
// reads but keeps losing records is cut off after SlowAfter.
func TestSlowClientEvicted(t *testing.T) {
	f := startServer(t, Config{SlowAfter: 200 * time.Millisecond}, func(s *Server) { s.writeTimeout = 300 * time.Millisecond })
	stalled, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /sse/* HTTP/1.1\r\nHost: %s\r\n\r\n", f.host)
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 1
	}, "the stalled client connected")

	gelf := []byte(`{"short_message":"` + strings.Repeat("x", 4096) + `"}`)
	testsupport.Eventually(t, 30*time.Second, func() bool {
		for range 500 { // enough to fill the socket buffers, bounded per poll
			if err := f.hub.Publish(t.Context(), "app", gelf); err != nil {
				t.Fatal(err)
			}
		}
		return gauge(t, f.url, `logviewer_stream_clients_closed_total{reason="slow"}`) == 1
	}, "the stalled client was not evicted as slow")
	if got := gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`); got != 0 {
		t.Errorf("clients still connected: %v", got)
	}
	if got := gauge(t, f.url, `logviewer_stream_clients_closed_total{reason="client_gone"}`); got > 0 {
		t.Errorf("the slow client was also counted as gone: %v", got)
	}
}

// TestChannelsPrefixLimit: /api/channels keeps the names with ?prefix= and
// the first ?limit= of them, sorted by name.
func TestChannelsPrefixLimit(t *testing.T) {
	f := startServer(t, Config{})
	for _, ch := range []string{"web-2", "db-1", "web-1", "web-3", "api"} {
		if err := f.hub.Publish(t.Context(), ch, []byte(`{"short_message":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		query string
		want  string
	}{
		{"", "api,db-1,web-1,web-2,web-3"},
		{"?prefix=web-", "web-1,web-2,web-3"},
		{"?prefix=web-&limit=2", "web-1,web-2"},
		{"?limit=0", ""},
		{"?prefix=nothing", ""},
	}
	for _, tc := range tests {
		var body struct {
			Channels []struct{ Name string } `json:"channels"`
		}
		testsupport.GetJSON(t, f.url+"/api/channels"+tc.query, &body)
		var names []string
		for _, c := range body.Channels {
			names = append(names, c.Name)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("/api/channels%s: %s, want %s", tc.query, got, tc.want)
		}
	}
	resp, err := http.Get(f.url + "/api/channels?limit=many")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad limit: %d, want 400", resp.StatusCode)
	}
}

// TestStreamPatternLists: a stream takes several patterns, in the path
// joined by commas or as repeated ?ch=; tail and live records come from
// those channels only.
func TestStreamPatternLists(t *testing.T) {
	f := startServer(t, Config{})
	publishTo := func(channels ...string) {
		for _, ch := range channels {
			if err := f.hub.Publish(t.Context(), ch, []byte(`{"short_message":"on `+ch+`"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishTo("web-1", "db-1", "api", "db-2")
	tests := []struct {
		query      string
		tail, live []string // the channels of the records expected
	}{
		{"/sse/web-*,db-1?tail=10", []string{"web-1", "db-1"}, []string{"web-2", "db-1"}},
		{"/sse?ch=web-*&ch=db-1&tail=10", []string{"web-1", "db-1"}, []string{"web-2", "db-1"}},
		{"/sse/api?ch=db-2&tail=10", []string{"api", "db-2"}, []string{"db-2"}},
	}
	streams := make([]*testsupport.SSEStream, len(tests))
	for i, tc := range tests {
		streams[i] = testsupport.OpenSSE(t, f.url+tc.query)
	}
	next := func(i int, ch string) {
		t.Helper()
		if got := streams[i].NextRecord(t, wait).Fields(t)["_channel"]; got != ch {
			t.Fatalf("%s: a record on %v, want %s", tests[i].query, got, ch)
		}
	}
	for i, tc := range tests {
		for _, ch := range tc.tail {
			next(i, ch)
		}
	}
	publishTo("web-2", "api-2", "db-1", "db-2")
	for i, tc := range tests {
		for _, ch := range tc.live {
			next(i, ch)
		}
	}
	resp, err := http.Get(f.url + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/sse without a channel: %d, want 400", resp.StatusCode)
	}
}

func TestHostAllowed(t *testing.T) {
	s := &Server{cfg: Config{AllowHosts: []string{"logs.example.com", "*.corp.example"}}}
	for host, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "LOCALHOST": true,
		"app.localhost": true, "": true, "logs.example.com": true, "LOGS.example.com:443": true,
		"a.corp.example": true, "corp.example": false, "evil.example": false, "logs.example.com.evil": false,
	} {
		if got := s.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestAuthorize(t *testing.T) {
	alice := &auth.User{Name: "alice", Globs: []string{"web-*", "db-1"}}
	tests := []struct {
		user    *auth.User
		pattern string
		want    string
		ok      bool
	}{
		{alice, "*", "web-*,db-1", true}, // the bus narrows: a tail counts her records only
		{alice, "web-1", "web-1", true},
		{alice, "db-2", "", false},
		{alice, "web-*,db-2", "", false},
		{alice, "w*", "w*", true}, // filtered record by record
		{&auth.User{Name: "eve"}, "*", "*", true},
		{auth.Anonymous(), "db-2", "db-2", true},
	}
	for _, tc := range tests {
		got, ok := authorize(tc.user, tc.pattern)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("authorize(%s, %q) = %q, %v; want %q, %v", tc.user.Name, tc.pattern, got, ok, tc.want, tc.ok)
		}
	}
}

// TestPatternListBounded: the channel patterns of a stream are bounded in
// length, in the path and in ?ch= alike.
func TestPatternListBounded(t *testing.T) {
	f := startServer(t, Config{})
	long := strings.Repeat("web-1,", maxPatternLen/6+1)
	for _, u := range []string{"/sse/" + long, "/sse?ch=" + strings.ReplaceAll(long, ",", "&ch=")} {
		resp, err := http.Get(f.url + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%d bytes of patterns: %d, want 400", len(long), resp.StatusCode)
		}
	}
}
