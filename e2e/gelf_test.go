package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// sendGELF runs testdata/gelf_send.py, a GELF sender written in Python from
// the GELF specification, to send records to addr in mode (see the script).
func sendGELF(t *testing.T, addr, mode string, records ...string) {
	t.Helper()
	py := testsupport.RequireBinary(t, "python3")
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("sendGELF: bad addr %q", addr)
	}
	args := append([]string{"testdata/gelf_send.py", host, port, mode}, records...)
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("gelf_send.py %s: %v\n%s", mode, err, out)
	}
}

// gelfRecord is a GELF record as JSON text.
func gelfRecord(t *testing.T, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGELFRealSender sends GELF the ways Docker, graypy and logback-gelf
// do (UDP plain, gzip, zlib, chunked out of order; TCP with NULs) and
// checks every field of the records read back over SSE.
func TestGELFRealSender(t *testing.T) {
	d := testsupport.StartDaemon(t, "--gelf-addr=127.0.0.1:0", "--dns=false", "--hostname=lv-test")
	if d.GELFAddr == "" || d.GELFAddr == d.SyslogAddr {
		t.Fatalf("GELF address %q (syslog %q)", d.GELFAddr, d.SyslogAddr)
	}
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	long := strings.Repeat("stack frame line\n", 1200) // 20 KB: 21 chunks of 1,000 bytes
	full := func(msg string) map[string]any {
		return map[string]any{"version": "1.1", "host": "app-host-1", "short_message": msg,
			"full_message": "details of " + msg, "timestamp": 1764000012.345, "level": 3,
			"_request_id": "r-42", "_attempt": 2}
	}
	tests := []struct {
		name    string
		mode    string
		records []map[string]any
	}{
		{name: "udp uncompressed", mode: "udp", records: []map[string]any{full("plain")}},
		{name: "udp gzip", mode: "udp-gzip", records: []map[string]any{full("gzip")}},
		{name: "udp zlib", mode: "udp-zlib", records: []map[string]any{full("zlib")}},
		{name: "udp chunked out of order", mode: "udp-chunked", records: []map[string]any{
			{"version": "1.1", "host": "app-host-1", "short_message": "chunked", "full_message": long,
				"timestamp": 1764000012.345, "level": 3, "_request_id": "r-42", "_attempt": 2}}},
		{name: "udp zlib chunked", mode: "udp-chunked-zlib", records: []map[string]any{
			{"version": "1.1", "host": "app-host-1", "short_message": "zlib chunked", "full_message": randomText(20_000),
				"timestamp": 1764000012.345, "level": 3, "_request_id": "r-42", "_attempt": 2}}},
		{name: "tcp with NULs", mode: "tcp", records: []map[string]any{full("tcp one"), full("tcp two"), full("tcp three")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent []string
			for _, r := range tc.records {
				sent = append(sent, gelfRecord(t, r))
			}
			sendGELF(t, d.GELFAddr, tc.mode, sent...)
			for _, want := range tc.records {
				ev := sse.NextRecord(t, recordTimeout)
				f := ev.Fields(t)
				for k, v := range want {
					if k == "level" || k == "_attempt" {
						v = float64(v.(int))
					}
					if f[k] != v {
						got := fmt.Sprint(f[k])
						t.Errorf("%s = %.80q, want %.80q", k, got, fmt.Sprint(v))
					}
				}
				for k, v := range map[string]any{"_app_name": "127.0.0.1", "_channel": "127.0.0.1", "_event_id": ev.ID} {
					if f[k] != v {
						t.Errorf("%s = %#v, want %#v", k, f[k], v)
					}
				}
			}
		})
	}

	t.Run("missing fields filled in", func(t *testing.T) {
		before := time.Now()
		sendGELF(t, d.GELFAddr, "udp", `{"short_message":"bare","_id":"reserved","_channel":"elsewhere"}`)
		f := sse.NextRecord(t, recordTimeout).Fields(t)
		if f["version"] != "1.1" || f["host"] != "127.0.0.1" || f["short_message"] != "bare" || f["_channel"] != "127.0.0.1" {
			t.Errorf("record %v", f)
		}
		ts, ok := f["timestamp"].(float64)
		if !ok || ts < float64(before.Unix())-1 || ts > float64(time.Now().Unix())+1 {
			t.Errorf("timestamp %v is not the reception time", f["timestamp"])
		}
		if _, ok := f["_id"]; ok {
			t.Errorf("GELF reserves _id, but the record has it")
		}
	})

	for _, tr := range []string{"gelf-udp", "gelf-tcp"} {
		if n := metricValue(t, d.HTTPURL, `logviewer_ingest_lines_total{transport="`+tr+`"}`); n == 0 {
			t.Errorf("no lines counted for %s", tr)
		}
	}
}

// randomText is n bytes of text that compresses badly, so that compressed
// it still needs several chunks.
func randomText(n int) string {
	var b strings.Builder
	x := uint64(88172645463325252)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789 "[x%37])
	}
	return b.String()
}

// TestGELFDropsCounted: invalid records and a chunked message that never
// completes are counted in /metrics, and the valid record after them
// still arrives.
func TestGELFDropsCounted(t *testing.T) {
	d := testsupport.StartDaemon(t, "--gelf-addr=127.0.0.1:0", "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	sendGELF(t, d.GELFAddr, "udp-chunked-incomplete", gelfRecord(t, map[string]any{
		"short_message": "never whole", "full_message": strings.Repeat("x", 5000)}))
	sendGELF(t, d.GELFAddr, "udp-raw", `{"short_message": not json`, `[1, 2]`, `{"full_message":"no short one"}`)
	sendGELF(t, d.GELFAddr, "tcp", `{"short_message":""}`, `{"short_message":"valid"}`)

	if f := sse.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "valid" {
		t.Fatalf("first record published: %v, want the valid one", f)
	}
	testsupport.Eventually(t, 5*time.Second, func() bool {
		return metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="gelf_invalid"}`) == 4
	}, "gelf_invalid = %v, want 4", func() any {
		return metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="gelf_invalid"}`)
	})
	// The incomplete message goes 5 s after its first chunk, on the
	// receiver's next sweep (every second).
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="gelf_incomplete"}`) == 1
	}, "gelf_incomplete = %v, want 1", func() any {
		return metricValue(t, d.HTTPURL, `logviewer_dropped_total{reason="gelf_incomplete"}`)
	})
	if !strings.Contains(d.Stderr(), "gelf message dropped") {
		t.Errorf("no drop logged")
	}
}

// TestGELFChannelFromApp: with --channel-from app a Docker record goes to
// its container's channel, and a record that names no app to its host's.
func TestGELFChannelFromApp(t *testing.T) {
	d := testsupport.StartDaemon(t, "--gelf-addr=127.0.0.1:0", "--dns=false", "--channel-from=app")
	app := testsupport.OpenSSE(t, d.HTTPURL+"/sse/orders-api")
	host := testsupport.OpenSSE(t, d.HTTPURL+"/sse/127.0.0.1")
	sendGELF(t, d.GELFAddr, "udp-gzip", gelfRecord(t, map[string]any{"version": "1.1", "host": "docker-1",
		"short_message": "from the container", "_container_name": "orders-api", "_container_id": "0123abcd"}))
	sendGELF(t, d.GELFAddr, "udp", `{"short_message":"from no app"}`)

	f := app.NextRecord(t, recordTimeout).Fields(t)
	if f["short_message"] != "from the container" || f["_channel"] != "orders-api" || f["_app_name"] != "127.0.0.1" {
		t.Fatalf("container channel got %v", f)
	}
	f = host.NextRecord(t, recordTimeout).Fields(t)
	if f["short_message"] != "from no app" || f["_channel"] != "127.0.0.1" {
		t.Fatalf("host channel got %v", f)
	}
}

// TestGELFGracefulStop: with a GELF TCP sender still connected, SIGTERM
// stops the daemon cleanly (exit 0) after it has delivered what it read.
func TestGELFGracefulStop(t *testing.T) {
	d := testsupport.StartDaemon(t, "--gelf-addr=127.0.0.1:0", "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	c, err := net.Dial("tcp", d.GELFAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, `{"short_message":"before stop"}`+"\x00"); err != nil {
		t.Fatal(err)
	}
	if f := sse.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "before stop" {
		t.Fatalf("record %v", f)
	}
	d.Stop(t)
}
