package e2e

import (
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestPythonExceptionsStayWhole: Python's SysLogHandler logging exceptions
// between one-liners, over TCP (NUL-terminated, the traceback's lines
// separated by LF) and UDP: each exception is one record with its whole
// traceback, each one-liner one record, in order.
func TestPythonExceptionsStayWhole(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			d := testsupport.StartDaemon(t, "--dns=false")
			sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/127.0.0.1")
			testsupport.SendPythonAs(t, d.SyslogAddr, proto, "billing",
				"exception:payment failed", "info:retrying", "exception:payment failed again", "warning:giving up")
			want := []struct {
				msg   string
				level float64
			}{
				{"payment failed\n" + testsupport.PythonTraceback, 3},
				{"retrying", 6},
				{"payment failed again\n" + testsupport.PythonTraceback, 3},
				{"giving up", 4},
			}
			for i, w := range want {
				f := sse.NextRecord(t, recordTimeout).Fields(t)
				if f["short_message"] != w.msg || f["level"] != w.level || f["_app"] != "billing" {
					t.Fatalf("record %d: short_message %q level %v _app %v, want %q level %v _app billing",
						i, f["short_message"], f["level"], f["_app"], w.msg, w.level)
				}
			}
		})
	}
}

// TestLoggerMultiLine: logger sends a message holding a newline as one
// frame, LF-terminated (RFC 3164) or octet-counted (RFC 5424); either way
// it is one record with its newline.
func TestLoggerMultiLine(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/127.0.0.1")
	tests := []struct {
		name string
		args []string
	}{
		{"rfc3164 lf-terminated", []string{"-T", "--rfc3164", "-t", "cron"}},
		{"rfc5424 octet-counted", []string{"-T", "--octet-count", "--rfc5424", "-t", "cron"}},
		{"rfc5424 udp", []string{"-d", "--rfc5424", "-t", "cron"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testsupport.Logger(t, d.SyslogAddr, append(tc.args, "job failed\nexit status 2")...)
			testsupport.Logger(t, d.SyslogAddr, append(tc.args, "next job")...)
			for _, want := range []string{"job failed\nexit status 2", "next job"} {
				f := sse.NextRecord(t, recordTimeout).Fields(t)
				if f["short_message"] != want || f["_app"] != "cron" {
					t.Fatalf("short_message %q _app %v, want %q from cron", f["short_message"], f["_app"], want)
				}
			}
		})
	}
}

// TestFramingsMixedOnOneConnection: the bytes of several real senders on
// one TCP connection, each framed its own way, some multi-line: every
// message is one record, in order.
func TestFramingsMixedOnOneConnection(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/127.0.0.1")
	rfc5424 := "<13>1 2026-12-01T14:29:00.859503+00:00 vm cron - - - job failed\nexit status 2"
	sendRaw(t, "tcp", d.SyslogAddr,
		"<30>1 2026-12-01T14:31:07.104512+01:00 docker-host web 2417 web - GET / 200\n", // Docker, LF
		strconv.Itoa(len(rfc5424))+" "+rfc5424,                                          // logger --octet-count, a newline inside
		"<11>billing: payment failed\n"+testsupport.PythonTraceback+"\x00",              // Python TCP, NUL
		"<13>Dec  1 14:29:00 vm cron: first line\n  second line\n",                      // logger RFC 3164, LF, multi-line
		"<14>last\x00",
	)
	want := []string{"GET / 200", "job failed\nexit status 2", "payment failed\n" + testsupport.PythonTraceback,
		"first line\n  second line", "last"}
	for i, w := range want {
		f := sse.NextRecord(t, recordTimeout).Fields(t)
		if f["short_message"] != w {
			t.Fatalf("record %d: short_message %q, want %q", i, f["short_message"], w)
		}
	}
}

// TestDockerSyslogDriver: the lines Docker's syslog driver writes with
// --log-opt syslog-format=rfc5424micro --log-opt tag="{{.Name}}" over TCP
// (its RFC 5424 format with microseconds, the tag as APP-NAME and MSGID,
// dockerd's PID, one LF-terminated line per container line) give records
// whose app, and with --channel-from app whose channel, is the container.
func TestDockerSyslogDriver(t *testing.T) {
	raw, err := os.ReadFile("testdata/docker-rfc5424micro.log")
	if err != nil {
		t.Fatal(err)
	}
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	sendRaw(t, "tcp", d.SyslogAddr, string(raw))
	want := []map[string]any{
		{"short_message": "GET /healthz 200 0.4ms", "_app": "web-frontend", "_channel": "web-frontend", "level": 6.0,
			"_facility": "daemon", "_procid": "2417", "_msgid": "web-frontend", "_hostname": "docker-host",
			"_log_time": "2026-12-01T14:31:07.104512+01:00", "_app_name": "127.0.0.1"},
		{"short_message": "upstream timed out while reading response header", "_app": "web-frontend",
			"_channel": "web-frontend", "level": 3.0},
		{"short_message": "charged order 7731", "_app": "billing-worker", "_channel": "billing-worker", "level": 6.0},
	}
	for i, w := range want {
		f := sse.NextRecord(t, recordTimeout).Fields(t)
		for k, v := range w {
			if f[k] != v {
				t.Errorf("record %d: %s = %#v, want %#v", i, k, f[k], v)
			}
		}
	}
}

// TestChannelFromApp: with --channel-from app, two apps on one host get a
// channel each, listed by /api/channels; a message without an app goes to
// its host's channel.
func TestChannelFromApp(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app")
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	testsupport.SendPythonAs(t, d.SyslogAddr, "udp", "fakelog_a", "info:from a")
	testsupport.Logger(t, d.SyslogAddr, "-T", "--rfc5424", "-t", "fakelog_b", "from b")
	sendRaw(t, "udp", d.SyslogAddr, "<14>no app here")
	sendRaw(t, "udp", d.SyslogAddr, "<14>web*/x: glob characters")

	got := map[string]string{}
	for range 4 {
		f := sse.NextRecord(t, recordTimeout).Fields(t)
		got[f["short_message"].(string)] = f["_channel"].(string)
	}
	want := map[string]string{"from a": "fakelog_a", "from b": "fakelog_b", "no app here": "127.0.0.1",
		"glob characters": "web__x"}
	for msg, ch := range want {
		if got[msg] != ch {
			t.Errorf("%q went to channel %q, want %q (all: %v)", msg, got[msg], ch, got)
		}
	}

	var list struct {
		Channels []struct{ Name string } `json:"channels"`
	}
	testsupport.GetJSON(t, d.HTTPURL+"/api/channels", &list)
	var names []string
	for _, c := range list.Channels {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if want := []string{"127.0.0.1", "fakelog_a", "fakelog_b", "web__x"}; !slices.Equal(names, want) {
		t.Errorf("/api/channels lists %v, want %v", names, want)
	}
	// The app's channel is one like any other: it can be watched alone.
	only := testsupport.OpenSSE(t, d.HTTPURL+"/sse/fakelog_b?tail=10")
	if f := only.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "from b" {
		t.Errorf("/sse/fakelog_b: %q, want \"from b\"", f["short_message"])
	}
}
