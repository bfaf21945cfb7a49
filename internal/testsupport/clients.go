package testsupport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SSEEvent is one event read from a text/event-stream.
type SSEEvent struct {
	ID    string
	Event string // "" for plain records
	Data  string
}

// Fields decodes the event's data as a JSON object.
func (e SSEEvent) Fields(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		tb.Fatalf("event data is not a JSON object: %v: %q", err, e.Data)
	}
	return m
}

// SSEStream reads events from one Server-Sent Events response.
type SSEStream struct {
	Events <-chan SSEEvent // closed when the stream ends
	Resp   *http.Response
	cancel context.CancelFunc
}

// OpenSSE opens url (with header pairs "Name: value"), checks the response is
// a 200 text/event-stream, and reads events in the background until the
// test ends or Close is called.
func OpenSSE(tb testing.TB, url string, headers ...string) *SSEStream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		tb.Fatalf("sse request %s: %v", url, err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("sse get %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		tb.Fatalf("sse get %s: status %d, content type %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan SSEEvent, 1<<16)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var ev SSEEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != nil {
					ev.Data = strings.Join(data, "\n")
					select {
					case events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = SSEEvent{}, nil
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id:"):
				ev.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
			case strings.HasPrefix(line, "event:"):
				ev.Event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
	}()
	s := &SSEStream{Events: events, Resp: resp, cancel: cancel}
	tb.Cleanup(s.Close)
	return s
}

// Close ends the stream.
func (s *SSEStream) Close() { s.cancel() }

// Next returns the next event, failing the test if none comes within timeout.
func (s *SSEStream) Next(tb testing.TB, timeout time.Duration) SSEEvent {
	tb.Helper()
	select {
	case ev, ok := <-s.Events:
		if !ok {
			tb.Fatalf("sse stream ended")
		}
		return ev
	case <-time.After(timeout):
		tb.Fatalf("no sse event within %v", timeout)
	}
	return SSEEvent{}
}

// NextRecord skips notices (dropped, gap) and returns the next record.
func (s *SSEStream) NextRecord(tb testing.TB, timeout time.Duration) SSEEvent {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := s.Next(tb, time.Until(deadline))
		if ev.Event == "" {
			return ev
		}
	}
}

// pythonSender is the Python program behind SendPython: stdlib logging
// through SysLogHandler, as an application would log. "exception:msg" logs
// msg with the traceback of a KeyError, as log.exception does in an except
// block.
const pythonSender = `
import logging, logging.handlers, socket, sys
host, port, proto, ident = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
socktype = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
h = logging.handlers.SysLogHandler(address=(host, port), socktype=socktype)
if ident:
    h.ident = ident + ": "
log = logging.getLogger("app")
log.addHandler(h)
log.setLevel(logging.DEBUG)
def exception(msg):
    try:
        {}["missing"]
    except KeyError:
        log.exception(msg)
levels = {"debug": log.debug, "info": log.info, "warning": log.warning, "error": log.error,
          "critical": log.critical, "exception": exception}
for arg in sys.argv[5:]:
    level, _, msg = arg.partition(":")
    levels[level](msg)
h.close()
`

// SendPython logs each "level:message" line (level debug, info, warning,
// error, critical, or exception for an error with a KeyError's traceback)
// through python3's logging.handlers.SysLogHandler to addr over proto
// ("udp" or "tcp"), in one process and one connection.
func SendPython(tb testing.TB, addr, proto string, lines ...string) {
	tb.Helper()
	SendPythonAs(tb, addr, proto, "", lines...)
}

// SendPythonAs is SendPython with the handler's ident set to "app: ", so that
// every message carries app as its tag (empty: no ident).
func SendPythonAs(tb testing.TB, addr, proto, app string, lines ...string) {
	tb.Helper()
	py := RequireBinary(tb, "python3")
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		tb.Fatalf("SendPython: bad addr %q", addr)
	}
	args := append([]string{"-c", pythonSender, host, port, proto, app}, lines...)
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		tb.Fatalf("python3 SysLogHandler: %v\n%s", err, out)
	}
}

// PythonTraceback is the traceback that SendPython's "exception:" lines
// carry after their message, as Python formats it (the file is "<string>").
const PythonTraceback = "Traceback (most recent call last):\n" +
	"  File \"<string>\", line 13, in exception\n" +
	"KeyError: 'missing'"

// Logger runs util-linux logger(1) with args against addr (adds -n and -P).
func Logger(tb testing.TB, addr string, args ...string) {
	tb.Helper()
	bin := RequireBinary(tb, "logger")
	host, port, _ := strings.Cut(addr, ":")
	args = append([]string{"-n", host, "-P", port}, args...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		tb.Fatalf("logger %v: %v\n%s", args, err, out)
	}
}

// GetJSON fetches url and decodes its JSON body into v.
func GetJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("get %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatalf("get %s: %v", url, fmt.Errorf("decode json: %w", err))
	}
}
