package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// redisStreamNode starts a logviewer --role stream on srv and waits until
// its pub/sub subscription is in place (healthz ok).
func redisStreamNode(t *testing.T, srv *testsupport.Redis, args ...string) *testsupport.Daemon {
	t.Helper()
	d := testsupport.StartDaemon(t, append([]string{"--role=stream", "--redis=" + srv.URL()}, args...)...)
	redisWaitHealth(t, d, "ok")
	return d
}

// redisIngestNode starts a logviewer --role ingest on srv.
func redisIngestNode(t *testing.T, srv *testsupport.Redis, args ...string) *testsupport.Daemon {
	t.Helper()
	d := testsupport.StartDaemon(t, append([]string{"--role=ingest", "--redis=" + srv.URL(), "--dns=false",
		"--hostname=lv-test", "--group=grp"}, args...)...)
	redisWaitHealth(t, d, "ok")
	return d
}

// health reads the daemon's /healthz status ("" when it does not answer).
func redisHealth(d *testsupport.Daemon) string {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(d.HTTPURL + "/healthz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h struct{ Status string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return ""
	}
	return h.Status
}

func redisWaitHealth(t *testing.T, d *testsupport.Daemon, want string) {
	t.Helper()
	testsupport.Eventually(t, 20*time.Second, func() bool { return redisHealth(d) == want },
		"healthz of %s not %q", d.HTTPURL, want)
}

// redisWSClient reads text frames from a /ws/ URL in the background.
type redisWSClient struct {
	frames chan []byte
}

func redisOpenWS(t *testing.T, url string) *redisWSClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dialCtx, dialCancel := context.WithTimeout(ctx, 10*time.Second)
	defer dialCancel()
	conn, _, err := websocket.Dial(dialCtx, url, nil)
	if err != nil {
		t.Fatalf("websocket dial %s: %v", url, err)
	}
	conn.SetReadLimit(1 << 20)
	c := &redisWSClient{frames: make(chan []byte, 1<<14)}
	go func() {
		defer close(c.frames)
		defer conn.CloseNow()
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			c.frames <- data
		}
	}()
	return c
}

// nextRecord returns the next frame that is a record (not a notice).
func (c *redisWSClient) nextRecord(t *testing.T, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case data, ok := <-c.frames:
			if !ok {
				t.Fatal("websocket closed")
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("frame is not JSON: %q", data)
			}
			if _, ok := m["_event_id"]; ok {
				return m
			}
		case <-deadline:
			t.Fatalf("no websocket record within %v", timeout)
		}
	}
}

// TestRedisSplitRoles: lines sent by python3's SysLogHandler to an ingest
// node arrive over SSE and WebSocket from a stream node, with every field
// and the same event ID on both.
func TestRedisSplitRoles(t *testing.T) {
	srv := testsupport.StartRedis(t)
	stream := redisStreamNode(t, srv)
	ingest := redisIngestNode(t, srv)
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")
	ws := redisOpenWS(t, "ws"+strings.TrimPrefix(stream.HTTPURL, "http")+"/ws/127.0.0.*")

	before := time.Now()
	testsupport.SendPython(t, ingest.SyslogAddr, "udp", "warning:hello over redis")
	ev := sse.NextRecord(t, recordTimeout)
	f := ev.Fields(t)
	want := map[string]any{"short_message": "hello over redis", "level": 4.0, "_facility": "user",
		"version": "1.1", "host": "lv-test", "_group": "grp", "_app_name": "127.0.0.1",
		"_channel": "127.0.0.1", "_event_id": ev.ID}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("sse %s = %#v, want %#v (record %s)", k, f[k], v, ev.Data)
		}
	}
	if ts, ok := f["timestamp"].(float64); !ok || ts < float64(before.Unix())-1 || ts > float64(time.Now().Unix())+1 {
		t.Errorf("timestamp %v is not the reception time", f["timestamp"])
	}
	if !redisIsStreamID(ev.ID) {
		t.Errorf("event ID %q is not a Redis stream ID", ev.ID)
	}
	w := ws.nextRecord(t, recordTimeout)
	for k, v := range f {
		if w[k] != v {
			t.Errorf("ws %s = %#v, sse has %#v", k, w[k], v)
		}
	}

	// The stream node lists the channel; the ingest node answers healthz
	// but serves no subscriptions.
	var ch struct {
		Channels []struct{ Name string } `json:"channels"`
	}
	testsupport.GetJSON(t, stream.HTTPURL+"/api/channels", &ch)
	if len(ch.Channels) != 1 || ch.Channels[0].Name != "127.0.0.1" {
		t.Errorf("stream node channels: %+v", ch.Channels)
	}
	ingest.Stop(t)
	stream.Stop(t)
}

// TestRedisTLS: with a rediss:// URL an ingest node and a stream node talk
// to a TLS-only Redis whose CA they trust through SSL_CERT_FILE, and a line
// goes through; a node that does not trust that CA stays degraded with a
// certificate error, so the certificate is really checked.
func TestRedisTLS(t *testing.T) {
	srv := testsupport.StartRedisWith(t, testsupport.RedisOptions{TLS: true})
	trust := []string{"SSL_CERT_FILE=" + srv.CAFile()}
	stream := testsupport.StartDaemonEnv(t, trust, "--role=stream", "--redis="+srv.URL())
	redisWaitHealth(t, stream, "ok")
	ingest := testsupport.StartDaemonEnv(t, trust, "--role=ingest", "--redis="+srv.URL(), "--dns=false")
	redisWaitHealth(t, ingest, "ok")
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")
	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", "info:hello over tls")
	ev := sse.NextRecord(t, recordTimeout)
	if f := ev.Fields(t); f["short_message"] != "hello over tls" || !redisIsStreamID(ev.ID) {
		t.Errorf("record over TLS: id %q, %s", ev.ID, ev.Data)
	}

	untrusting := testsupport.StartDaemon(t, "--role=ingest", "--redis="+srv.URL())
	redisWaitDegraded(t, untrusting, "certificate signed by unknown authority")
}

// TestRedisPassword: nodes with the password in the URL (escaped, as URLs
// want it) work; a node with a wrong one stays up, degraded, and says why.
func TestRedisPassword(t *testing.T) {
	srv := testsupport.StartRedisWith(t, testsupport.RedisOptions{Password: "s3cret pass/word@"})
	stream := redisStreamNode(t, srv)
	ingest := redisIngestNode(t, srv)
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")
	testsupport.SendPython(t, ingest.SyslogAddr, "udp", "info:hello with a password")
	if f := sse.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "hello with a password" {
		t.Errorf("record: %v", f)
	}

	wrong := testsupport.StartDaemon(t, "--role=ingest", "--redis="+srv.URLWithPassword("wrong"))
	redisWaitDegraded(t, wrong, "WRONGPASS")
}

// redisWaitDegraded waits until d's /healthz says degraded, and checks that
// its error names the cause.
func redisWaitDegraded(t *testing.T, d *testsupport.Daemon, cause string) {
	t.Helper()
	var h struct{ Status, Error string }
	testsupport.Eventually(t, 20*time.Second, func() bool {
		testsupport.GetJSON(t, d.HTTPURL+"/healthz", &h)
		return h.Status == "degraded"
	}, "healthz of %s is %q, want degraded", d.HTTPURL, func() any { return h.Status })
	if !strings.Contains(h.Error, cause) {
		t.Errorf("degraded for %q, want %q", h.Error, cause)
	}
}

// TestRedisSubscriberCutOffByRedis: Redis disconnects a pub/sub reader
// whose output buffer passes client-output-buffer-limit. Here the stream
// node really falls behind (SIGSTOP) while lines flow, Redis cuts it off,
// and once it runs again it must notice, reconnect and fill the gap from
// the streams: its client gets every line once, in order, with no notice.
func TestRedisSubscriberCutOffByRedis(t *testing.T) {
	srv := testsupport.StartRedis(t)
	rc := srv.Client(t)
	if err := rc.ConfigSet(context.Background(), "client-output-buffer-limit", "pubsub 64kb 0 0").Err(); err != nil {
		t.Fatalf("config set: %v", err)
	}
	stream := redisStreamNode(t, srv)
	ingest := redisIngestNode(t, srv, "--history=100000")
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")

	conn, err := net.Dial("tcp", ingest.SyslogAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := 0
	send := func(n int) {
		t.Helper()
		var b strings.Builder
		for range n {
			fmt.Fprintf(&b, "<14>app: line %d %s\n", sent, strings.Repeat("x", 200))
			sent++
		}
		if _, err := io.WriteString(conn, b.String()); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	pubsubClients := func() int {
		list, err := rc.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatalf("client list: %v", err)
		}
		return strings.Count(list, "sub=0 psub=1")
	}
	send(100)
	ev := sse.NextRecord(t, recordTimeout)
	if msg, _ := ev.Fields(t)["short_message"].(string); !strings.HasPrefix(msg, "line 0 ") {
		t.Fatalf("first record: %s", ev.Data)
	}

	if err := stream.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	stopped := true
	defer func() {
		if stopped {
			stream.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	// Lines until Redis gives up on the stopped reader: the kernel's socket
	// buffers take the first megabytes, Redis's 64 KB after them.
	for pubsubClients() > 0 {
		if sent > 100_000 {
			t.Fatalf("Redis still holds the stopped node's subscription after %d lines", sent)
		}
		send(2000)
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("Redis cut the stopped stream node off after %d lines", sent)
	send(100) // published while the node has no subscription at all
	testsupport.Eventually(t, 20*time.Second, func() bool {
		// The count of records written to the channel's stream.
		n, _ := rc.HGet(context.Background(), "logviewer:meta:127.0.0.1", "n").Int()
		return n == sent
	}, "ingest did not store all %d lines", sent)
	if err := stream.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
	stopped = false

	for want := 1; want < sent; want++ {
		ev := sse.Next(t, recordTimeout)
		if ev.Event != "" {
			t.Fatalf("after %d records: unexpected %q notice %s", want, ev.Event, ev.Data)
		}
		msg, _ := ev.Fields(t)["short_message"].(string)
		if !strings.HasPrefix(msg, fmt.Sprintf("line %d ", want)) {
			t.Fatalf("record %d is %.40q", want, msg)
		}
	}
	testsupport.Eventually(t, 10*time.Second, func() bool { return pubsubClients() == 1 },
		"the stream node did not subscribe again")
}

// redisIsStreamID reports whether id looks like "<ms>-<n>".
func redisIsStreamID(id string) bool {
	ms, n, ok := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(n, 10, 64)
	return ok && err1 == nil && err2 == nil
}

// TestRedisResumeOnOtherStreamNode: a client reading stream node 1
// reconnects to stream node 2 with its last event ID and gets every later
// record once.
func TestRedisResumeOnOtherStreamNode(t *testing.T) {
	srv := testsupport.StartRedis(t)
	node1 := redisStreamNode(t, srv)
	node2 := redisStreamNode(t, srv)
	ingest := redisIngestNode(t, srv)

	lines := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("info:line %d", i))
		}
		return out
	}
	sse1 := testsupport.OpenSSE(t, node1.HTTPURL+"/sse/*")
	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", lines(0, 20)...)
	var last testsupport.SSEEvent
	for i := 0; i < 10; i++ {
		last = sse1.NextRecord(t, recordTimeout)
		if got := last.Fields(t)["short_message"]; got != fmt.Sprintf("line %d", i) {
			t.Fatalf("node 1 record %d: %v", i, got)
		}
	}
	sse1.Close() // the client's connection to node 1 breaks here

	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", lines(20, 40)...)
	sse2 := testsupport.OpenSSE(t, node2.HTTPURL+"/sse/*", "Last-Event-ID: "+last.ID)
	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", lines(40, 50)...)
	seen := map[string]bool{last.ID: true}
	for i := 10; i < 50; i++ {
		ev := sse2.NextRecord(t, recordTimeout)
		if got := ev.Fields(t)["short_message"]; got != fmt.Sprintf("line %d", i) {
			t.Fatalf("node 2 after resume: record %q, want line %d", got, i)
		}
		if seen[ev.ID] {
			t.Fatalf("event ID %s twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	// Nothing more: a marker line comes next, not a repeat.
	testsupport.SendPython(t, ingest.SyslogAddr, "tcp", "info:marker")
	if got := sse2.NextRecord(t, recordTimeout).Fields(t)["short_message"]; got != "marker" {
		t.Errorf("after the resumed records: %q, want the marker", got)
	}
}

// TestRedisOutageLosesNothing: Redis stops for 5 seconds while lines flow
// into the ingest node, then comes back empty. The daemons stay up, report
// degraded meanwhile, and every line reaches the stream node's client.
func TestRedisOutageLosesNothing(t *testing.T) {
	srv := testsupport.StartRedis(t)
	stream := redisStreamNode(t, srv)
	ingest := redisIngestNode(t, srv)
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")

	conn, err := net.Dial("tcp", ingest.SyslogAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			if _, err := fmt.Fprintf(conn, "<14>app: line %d\n", n); err != nil {
				done <- err
				return
			}
			sent.Add(1)
		}
	}()
	testsupport.Eventually(t, 10*time.Second, func() bool { return sent.Load() > 100 }, "sender stuck")
	srv.Stop(t) // SIGKILL: no persistence, what Redis held is gone
	stoppedAt := int(sent.Load())
	redisWaitHealth(t, ingest, "degraded")
	redisWaitHealth(t, stream, "degraded")
	time.Sleep(5 * time.Second) // the outage; lines keep flowing into the ingest node
	srv.Start(t)
	redisWaitHealth(t, ingest, "ok")
	redisWaitHealth(t, stream, "ok")
	testsupport.Eventually(t, 10*time.Second, func() bool { return sent.Load() > 4000 }, "sender stuck")
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("sending to the ingest node: %v", err)
	}
	total := int(sent.Load())

	// Every line accepted while Redis was down arrives, once, in order; only
	// lines the killed Redis had acknowledged may be missing, announced by a
	// gap notice.
	var seq []int
	deadline := time.Now().Add(30 * time.Second)
	for (len(seq) == 0 || seq[len(seq)-1] < total-1) && time.Now().Before(deadline) {
		ev := sse.Next(t, time.Until(deadline))
		if ev.Event == "gap" {
			seq = append(seq, testsupport.GapMark)
			continue
		}
		if ev.Event != "" {
			t.Fatalf("unexpected %q notice: %s", ev.Event, ev.Data)
		}
		msg, _ := ev.Fields(t)["short_message"].(string)
		n, err := strconv.Atoi(strings.TrimPrefix(msg, "line "))
		if err != nil {
			t.Fatalf("unexpected record %s", ev.Data)
		}
		seq = append(seq, n)
	}
	if err := testsupport.CheckOutageSequence(seq, total, stoppedAt, 100); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*testsupport.Daemon{ingest, stream} {
		select {
		case <-d.Exited():
			t.Fatalf("daemon %s exited during the outage:\n%s", d.HTTPURL, d.Stderr())
		default:
		}
	}
	ingest.Stop(t)
	stream.Stop(t)
}

// TestRedisGlobResumeAcrossShards: two ingest and two stream daemons over
// two standalone Redis shards, and over a Redis Cluster of three masters.
// A client reading a glob from stream node 1 breaks off while lines flow
// and reconnects to stream node 2 with its last event ID (a resume token
// of every shard's or cluster bucket's position): it gets every line once,
// in order per channel, with 40 channels active.
func TestRedisGlobResumeAcrossShards(t *testing.T) {
	for _, tc := range scaleOutSetups {
		t.Run(tc.name, func(t *testing.T) {
			flags := tc.start(t)
			node := func(role string) *testsupport.Daemon {
				d := testsupport.StartDaemon(t, append([]string{"--role=" + role, "--dns=false", "--channel-from=app"}, flags...)...)
				redisWaitHealth(t, d, "ok")
				return d
			}
			in1, in2 := node("ingest"), node("ingest")
			s1, s2 := node("stream"), node("stream")
			first := testsupport.OpenSSE(t, s1.HTTPURL+"/sse/app-*")

			// 40 apps, 20 per ingest node, all active at once: more
			// channels than a cluster token held when each channel had its
			// own ID sequence.
			apps := make([][]string, 2)
			for i := range 40 {
				apps[i%2] = append(apps[i%2], fmt.Sprintf("app-%d", i))
			}
			const per, chunk = 150, 10
			done := make(chan struct{})
			go func() {
				defer close(done)
				// Each app is sent by one ingest node, so its order is the
				// order it was sent in.
				conns := make([]net.Conn, 2)
				for i, d := range []*testsupport.Daemon{in1, in2} {
					c, err := net.Dial("tcp", d.SyslogAddr)
					if err != nil {
						t.Errorf("dial: %v", err)
						return
					}
					defer c.Close()
					conns[i] = c
				}
				for from := 0; from < per; from += chunk {
					for i, c := range conns {
						var b strings.Builder
						for n := from; n < from+chunk; n++ {
							for _, app := range apps[i] {
								fmt.Fprintf(&b, "<14>%s: %s line %d\n", app, app, n)
							}
						}
						if _, err := io.WriteString(c, b.String()); err != nil {
							t.Errorf("send: %v", err)
							return
						}
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()

			total := 40 * per
			nums := map[string][]int{}
			read := func(s *testsupport.SSEStream, n int) (last testsupport.SSEEvent) {
				for range n {
					last = s.NextRecord(t, recordTimeout)
					f := last.Fields(t)
					ch, _ := f["_channel"].(string)
					if id, _ := f["_event_id"].(string); id != last.ID {
						t.Fatalf("_event_id %q, SSE id %q", id, last.ID)
					}
					var app string
					var i int
					if _, err := fmt.Sscanf(f["short_message"].(string), "%s line %d", &app, &i); err != nil || app != ch {
						t.Fatalf("record %s on channel %s", last.Data, ch)
					}
					nums[ch] = append(nums[ch], i)
				}
				return last
			}
			last := read(first, total/3)
			first.Close() // the client's connection to node 1 breaks here
			t.Logf("resume after %q on node 2", last.ID)
			if tc.name == "cluster of three masters" && strings.Count(last.ID, ".") != 15 {
				t.Errorf("token %q does not list 16 buckets", last.ID)
			}
			second := testsupport.OpenSSE(t, s2.HTTPURL+"/sse/app-*", "Last-Event-ID: "+last.ID)
			read(second, total-total/3)
			<-done
			for _, list := range apps {
				for _, app := range list {
					if !slices.Equal(nums[app], seqTo(0, per)) {
						t.Errorf("%s: %d lines %v", app, len(nums[app]), nums[app])
					}
				}
			}
			// Nothing more: a marker line comes next, not a repeat.
			testsupport.SendPythonAs(t, in1.SyslogAddr, "tcp", "app-a", "info:marker")
			if got := second.NextRecord(t, recordTimeout).Fields(t)["short_message"]; got != "marker" {
				t.Errorf("after the resumed records: %q, want the marker", got)
			}
		})
	}
}
