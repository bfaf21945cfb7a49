package stream

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestServeShutdown: records published just before Serve's context ends
// reach every client; then the SSE stream ends, the WebSocket closes with
// 1001 going away, new connections are refused, and Serve returns.
func TestServeShutdown(t *testing.T) {
	const n = 5000
	f := startServer(t, Config{})
	sse := testsupport.OpenSSE(t, f.url+"/sse/*")
	ws := dialWS(t, f, "/ws/*", nil)
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 1 &&
			gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 1
	}, "clients connected")

	f.publish(t, "app", seq("m", 0, n)...)
	f.stop() // at once: most of the records are still queued

	wsDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		for i := range n {
			_, b, err := ws.Read(ctx)
			if err != nil {
				wsDone <- fmt.Errorf("ws frame %d: %w", i, err)
				return
			}
			if want := fmt.Sprintf(`"short_message":"m%d"`, i); !bytes.Contains(b, []byte(want)) {
				wsDone <- fmt.Errorf("ws frame %d: %s, want %s", i, b, want)
				return
			}
		}
		_, _, err := ws.Read(ctx)
		if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
			wsDone <- fmt.Errorf("after the records: %v (status %v), want close 1001", err, st)
			return
		}
		wsDone <- nil
	}()

	got, _ := shortMessages(t, sse, n)
	if want := seq("m", 0, n); !slices.Equal(got, want) {
		t.Fatalf("sse records differ after shutdown")
	}
	select {
	case ev, ok := <-sse.Events:
		if ok {
			t.Fatalf("sse: event %+v after the records, want the end of the stream", ev)
		}
	case <-time.After(wait):
		t.Fatal("sse stream did not end")
	}
	if err := <-wsDone; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		f.done <- nil // for the cleanup
	case <-time.After(wait):
		t.Fatal("Serve did not return")
	}
	if resp, err := http.Get(f.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a new connection was served after Serve returned")
	}
}

// TestServeShutdownStuckClients: clients that neither read nor answer the
// close handshake do not keep Serve from returning.
func TestServeShutdownStuckClients(t *testing.T) {
	f := startServer(t, Config{})
	// A WebSocket client that never reads: it never answers the close.
	_ = dialWS(t, f, "/ws/*", nil)
	// An SSE client that never reads while more than its socket buffers
	// hold is queued for it.
	slow, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /sse/* HTTP/1.1\r\nHost: %s\r\n\r\n", f.host)
	testsupport.Eventually(t, wait, func() bool {
		return gauge(t, f.url, `logviewer_stream_clients{kind="sse"}`) == 1 &&
			gauge(t, f.url, `logviewer_stream_clients{kind="ws"}`) == 1
	}, "clients connected")
	pad := strings.Repeat("z", 4096)
	f.publish(t, "app", seq(pad, 0, 4000)...)

	f.stop()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		f.done <- nil // for the cleanup
	case <-time.After(wait):
		t.Fatal("Serve did not return with stuck clients")
	}
	testsupport.Eventually(t, wait, func() bool {
		return f.gathered(t, "logviewer_stream_clients") == 0
	}, "stuck clients still counted after Serve returned")
}
