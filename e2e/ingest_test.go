package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

const recordTimeout = 10 * time.Second

// TestRealClientsFields sends with python3 (UDP and TCP) and logger
// (RFC 3164, RFC 5424 with structured data, octet counting) and checks every
// field of the records read back over SSE.
func TestRealClientsFields(t *testing.T) {
	d := testsupport.StartDaemon(t, "--hostname=lv-test", "--group=grp")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")

	tests := []struct {
		name string
		send func()
		want map[string]any
	}{
		{
			name: "python udp warning",
			send: func() { testsupport.SendPython(t, d.SyslogAddr, "udp", "warning:hello world from python") },
			want: map[string]any{"short_message": "hello world from python", "level": 4.0, "_facility": "user"},
		},
		{
			name: "logger rfc3164 over tcp",
			send: func() {
				testsupport.Logger(t, d.SyslogAddr, "-T", "--rfc3164", "-t", "billing", "-p", "local0.err", "card declined id=7")
			},
			want: map[string]any{"short_message": "card declined id=7", "level": 3.0, "_facility": "local0", "_app": "billing"},
		},
		{
			name: "logger rfc5424 with structured data, octet counted",
			send: func() {
				testsupport.Logger(t, d.SyslogAddr, "-T", "--octet-count", "--rfc5424", "--sd-id", "zoo@123",
					"--sd-param", `tiger="hungry"`, "--msgid", "ID47", "-t", "zookeeper", "-p", "daemon.notice", "feed the tiger")
			},
			want: map[string]any{"short_message": "feed the tiger", "level": 5.0, "_facility": "daemon", "_app": "zookeeper",
				"_msgid": "ID47", "_sd_zoo@123_tiger": nil},
		},
		{
			name: "logger rfc5424 over udp",
			send: func() {
				testsupport.Logger(t, d.SyslogAddr, "-d", "--rfc5424", "-t", "cron", "-p", "cron.info", "job done")
			},
			want: map[string]any{"short_message": "job done", "level": 6.0, "_facility": "cron", "_app": "cron"},
		},
		{
			name: "header-less line keeps every word",
			send: func() { sendRaw(t, "udp", d.SyslogAddr, "<11>hello world from python") },
			want: map[string]any{"short_message": "hello world from python", "level": 3.0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			tc.send()
			ev := sse.NextRecord(t, recordTimeout)
			f := ev.Fields(t)
			for k, v := range tc.want {
				if k == "_sd_zoo@123_tiger" {
					// '@' is outside GELF's field-name alphabet, so the name is sanitised.
					if f["_sd_zoo_123_tiger"] != "hungry" {
						t.Errorf("structured data: want _sd_zoo_123_tiger=hungry in %v", f)
					}
					continue
				}
				if f[k] != v {
					t.Errorf("%s = %#v, want %#v (record %s)", k, f[k], v, ev.Data)
				}
			}
			checkCommonFields(t, f, ev.ID, before)
		})
	}
}

// checkCommonFields checks the fields every record carries.
func checkCommonFields(t *testing.T, f map[string]any, id string, before time.Time) {
	t.Helper()
	want := map[string]any{"version": "1.1", "host": "lv-test", "_group": "grp", "_app_name": "localhost",
		"_channel": "localhost", "_event_id": id}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %#v, want %#v", k, f[k], v)
		}
	}
	ts, ok := f["timestamp"].(float64)
	if !ok || ts < float64(before.Unix())-1 || ts > float64(time.Now().Unix())+1 {
		t.Errorf("timestamp %v is not the reception time (sent at %v)", f["timestamp"], before.Unix())
	}
	if _, ok := f["_id"]; ok {
		t.Errorf("GELF reserves _id, but the record has it")
	}
}

func sendRaw(t *testing.T, network, addr string, payloads ...string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	for _, p := range payloads {
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

// TestPythonTCPLinesStayWhole: the rsyslog pipeline merged Python's three
// NUL-terminated TCP lines into one record; here they are three, whole.
func TestPythonTCPLinesStayWhole(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/127.0.0.1")
	testsupport.SendPython(t, d.SyslogAddr, "tcp", "info:tcp one", "info:tcp two", "error:tcp three")
	for _, want := range []string{"tcp one", "tcp two", "tcp three"} {
		f := sse.NextRecord(t, recordTimeout).Fields(t)
		if f["short_message"] != want || f["_app_name"] != "127.0.0.1" {
			t.Fatalf("got short_message %q from %v, want %q from 127.0.0.1", f["short_message"], f["_app_name"], want)
		}
	}
}

// TestOversizedLineThenNormal: a 100 KB line is cut and marked, and the
// normal line after it on the same connection arrives whole.
func TestOversizedLineThenNormal(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--max-message-size=65536")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	big := "<14>" + strings.Repeat("x", 100_000) + "\n"
	sendRaw(t, "tcp", d.SyslogAddr, big, "<14>after the big one\n")

	first := sse.NextRecord(t, recordTimeout).Fields(t)
	msg, _ := first["short_message"].(string)
	if first["_truncated"] != true || len(msg) < 60_000 || len(msg) > 65536 {
		t.Fatalf("big line: _truncated=%v len(short_message)=%d, want true and at most 64 KiB", first["_truncated"], len(msg))
	}
	second := sse.NextRecord(t, recordTimeout).Fields(t)
	if second["short_message"] != "after the big one" || second["_truncated"] != nil {
		t.Fatalf("line after the big one: %v", second)
	}
	if v := metricValue(t, d.HTTPURL, "logviewer_ingest_truncated_total"); v != 1 {
		t.Fatalf("logviewer_ingest_truncated_total = %v, want 1", v)
	}
}

// TestSlowClientDoesNotHoldBackOthers: one SSE client never reads while
// 100,000 lines flow; a fast client still gets every line in order, the
// slow one is told of its drops, and the drops are counted.
func TestSlowClientDoesNotHoldBackOthers(t *testing.T) {
	const lines = 100_000
	d := testsupport.StartDaemon(t, "--dns=false")

	slow, err := net.Dial("tcp", strings.TrimPrefix(d.HTTPURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /sse/* HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(d.HTTPURL, "http://"))
	fast := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	testsupport.Eventually(t, 5*time.Second, func() bool {
		return metricValue(t, d.HTTPURL, `logviewer_stream_clients{kind="sse"}`) == 2
	}, "both SSE clients connected")

	conn, err := net.Dial("tcp", d.SyslogAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 64<<10)
	// received is how many lines the fast client has read in order; the
	// sender stays at most lag lines ahead of it, so the fast client can
	// never fall a whole queue behind however slow this machine (or -race)
	// makes it, while the slow client, which reads nothing, falls ever
	// further behind and must lose lines.
	const burst, lag = 1000, 8000
	var received atomic.Int64
	done := make(chan int, 1)
	go func() {
		n := 0
		defer func() { done <- n }()
		for ev := range fast.Events {
			if ev.Event != "" {
				t.Errorf("fast client got a %q notice: %s", ev.Event, ev.Data)
				continue
			}
			want := fmt.Sprintf("line %d", n)
			if msg := ev.Fields(t)["short_message"]; msg != want {
				t.Errorf("fast client: got %q, want %q", msg, want)
				return
			}
			n++
			received.Store(int64(n))
			if n == lines {
				return
			}
		}
	}()
	for i := 0; i < lines; i++ {
		fmt.Fprintf(w, "<14>line %d\n", i)
		if i%burst == burst-1 {
			w.Flush()
			sent := int64(i + 1)
			testsupport.Eventually(t, 30*time.Second, func() bool {
				select {
				case <-done:
					t.Fatalf("fast client stopped after %d of %d lines", received.Load(), lines)
				default:
				}
				return sent-received.Load() <= lag
			}, fmt.Sprintf("fast client within %d lines of the %d sent", lag, sent))
		}
	}
	w.Flush()
	select {
	case n := <-done:
		if n != lines {
			t.Fatalf("fast client got %d of %d lines", n, lines)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("fast client did not get all %d lines within 60s (got %d)", lines, received.Load())
	}
	if got := metricValue(t, d.HTTPURL, `logviewer_ingest_lines_total{transport="tcp"}`); got != lines {
		t.Fatalf("ingest counted %v lines, want %d", got, lines)
	}
	if got := metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="slow_subscriber"}`); got <= 0 {
		t.Fatalf("no slow-subscriber drops counted")
	}
	// The slow client is told what it lost: either by an "event: dropped"
	// notice when it reads at last, or, when the server gave up on a peer
	// that did not read for its whole write timeout, by a gap notice when it
	// reconnects with the last ID it got, as EventSource does.
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(slow)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lastID := ""
	for sc.Scan() {
		line := sc.Text()
		if line == "event: dropped" {
			return
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			lastID = id
		}
	}
	if sc.Err() != nil || lastID == "" {
		t.Fatalf("slow client: no dropped notice and no clean end of stream (last id %q): %v", lastID, sc.Err())
	}
	again := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*", "Last-Event-ID: "+lastID)
	if ev := again.Next(t, recordTimeout); ev.Event != "gap" {
		t.Fatalf("slow client resuming from %s after losing records: first event %+v, want a gap notice", lastID, ev)
	}
}

// TestGracefulStop: SIGTERM with clients attached ends the stream cleanly
// and the daemon exits 0 (it enforces its own 5 s limit).
func TestGracefulStop(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	sendRaw(t, "udp", d.SyslogAddr, "<14>before stop")
	sse.NextRecord(t, recordTimeout)
	d.Stop(t)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-sse.Events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("SSE stream still open 5s after the daemon stopped")
		}
	}
}

// metricValue reads one sample from /metrics by its name and labels as
// printed ("name" or `name{label="v"}`); a sample not present reads as 0.
func metricValue(t *testing.T, baseURL, sample string) float64 {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("get /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			var v float64
			if _, err := fmt.Sscan(value, &v); err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	return 0
}
