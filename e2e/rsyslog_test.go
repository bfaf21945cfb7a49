package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// rsyslogConf is the drop-in config the tests run, ports rewritten.
const rsyslogConf = "../deploy/rsyslog/logviewer.conf"

// templateFields are the proof of concept's five GELF fields: exactly what
// the rsyslog drop-in publishes, after the "_event_id" it puts first.
var templateFields = []string{"_app_name", "_group", "host", "short_message", "timestamp"}

// startRsyslogToRedis runs a redis-server and rsyslogd with the drop-in
// config pointed at it.
func startRsyslogToRedis(t *testing.T) (*testsupport.Redis, *testsupport.Rsyslogd) {
	t.Helper()
	r := testsupport.StartRedis(t)
	_, port, _ := strings.Cut(r.Addr(), ":")
	rs := testsupport.StartRsyslogd(t, rsyslogConf, map[string]string{"server": "127.0.0.1", "serverport": port})
	return r, rs
}

// published is one message seen on Redis pub/sub.
type published struct {
	channel string
	fields  map[string]any
	raw     string
}

// subscribeAll PSUBSCRIBEs to every channel and returns the messages as
// they come; the subscription is confirmed before it returns.
func subscribeAll(t *testing.T, r *testsupport.Redis) <-chan published {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps := c.PSubscribe(ctx, "*")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("psubscribe: %v", err)
	}
	out := make(chan published, 1024)
	go func() {
		defer ps.Close()
		for m := range ps.Channel() {
			var f map[string]any
			if err := json.Unmarshal([]byte(m.Payload), &f); err != nil {
				t.Errorf("channel %s: payload is not a JSON object: %v: %q", m.Channel, err, m.Payload)
				continue
			}
			out <- published{channel: m.Channel, fields: f, raw: m.Payload}
		}
	}()
	return out
}

func nextPublished(t *testing.T, ch <-chan published) published {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(recordTimeout):
		t.Fatalf("nothing published on Redis within %v", recordTimeout)
	}
	return published{}
}

// wantHost is rsyslog's $myhostname: the host name without its domain.
func wantHost(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(h, ".")
	return short
}

// checkTemplateRecord checks a record has exactly the template's fields with
// the right values around short_message.
func checkTemplateRecord(t *testing.T, f map[string]any, wantMsg string, before time.Time) {
	t.Helper()
	var keys []string
	for k := range f {
		if k == "_event_id" || k == "_channel" { // added by the stream node
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, templateFields) {
		t.Errorf("fields %v, want the template's %v (record %v)", keys, templateFields, f)
	}
	if f["short_message"] != wantMsg {
		t.Errorf("short_message = %q, want %q", f["short_message"], wantMsg)
	}
	if f["_group"] != "lr" {
		t.Errorf("_group = %v, want lr", f["_group"])
	}
	if f["_app_name"] != "localhost" {
		t.Errorf("_app_name = %v, want localhost (rsyslog's fromhost of 127.0.0.1)", f["_app_name"])
	}
	if h := wantHost(t); f["host"] != h {
		t.Errorf("host = %v, want %q", f["host"], h)
	}
	ts, ok := f["timestamp"].(float64)
	if !ok || ts < float64(before.Unix())-1 || ts > float64(time.Now().Unix())+1 {
		t.Errorf("timestamp %v is not the reception time (sent at %d)", f["timestamp"], before.Unix())
	}
}

// TestRsyslogDropInPublishesTemplate: real rsyslogd with the deploy config
// receives what real clients send and PUBLISHes the template's record on the
// sender's channel, and XADDs the same record to the channel's stream.
func TestRsyslogDropInPublishesTemplate(t *testing.T) {
	r, rs := startRsyslogToRedis(t)
	sub := subscribeAll(t, r)

	tests := []struct {
		name string
		send func()
		want string
	}{
		{"python udp (header-less, trailing NUL)", func() { testsupport.SendPython(t, rs.SyslogAddr, "udp", "warning:hello world from python") }, "hello world from python"},
		{"python tcp (header-less, NUL framed)", func() { testsupport.SendPython(t, rs.SyslogAddr, "tcp", "error:tcp one", "info:tcp two") }, "tcp one"},
		{"second NUL-framed line of the same connection", func() {}, "tcp two"},
		{"header-less with a tag", func() { sendRaw(t, "udp", rs.SyslogAddr, "<11>myapp[42]: tagged 100% done") }, "tagged 100% done"},
		{"logger rfc3164 over tcp", func() {
			testsupport.Logger(t, rs.SyslogAddr, "-T", "--rfc3164", "-t", "billing", "-p", "local0.err", "card declined id=7")
		}, "card declined id=7"},
		{"logger rfc5424 octet counted", func() {
			testsupport.Logger(t, rs.SyslogAddr, "-T", "--octet-count", "--rfc5424", "--msgid", "ID47", "-t", "zookeeper", "feed the tiger")
		}, "feed the tiger"},
		{"CRLF line, tab and quotes", func() { sendRaw(t, "tcp", rs.SyslogAddr, "<14>Nov 24 10:00:00 web app: a\t\"b\" c\\d\r\n") }, "a\t\"b\" c\\d"},
		{"invalid UTF-8 becomes '?'", func() { sendRaw(t, "udp", rs.SyslogAddr, "<14>app: caf\xc3\xa9 \xff!") }, "café ?!"},
	}
	var channel string
	var pubs []published
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			tc.send()
			p := nextPublished(t, sub)
			checkTemplateRecord(t, p.fields, tc.want, before)
			if p.channel != p.fields["_app_name"] {
				t.Errorf("published on %q, want the sender's channel %q", p.channel, p.fields["_app_name"])
			}
			if !strings.HasPrefix(p.raw, `{"_event_id":"`) {
				t.Errorf("payload does not start with _event_id: %q", p.raw)
			}
			channel = p.channel
			pubs = append(pubs, p)
		})
	}
	if len(pubs) != len(tests) {
		t.Fatalf("%d of %d records published", len(pubs), len(tests))
	}

	// The stream holds the same records under the published IDs, the
	// record alone in field "d": the payload is {"_event_id":ID, ...d}.
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	ctx := context.Background()
	key := "logviewer:stream:" + channel
	entries, err := c.XRange(ctx, key, "-", "+").Result()
	if err != nil || len(entries) != len(tests) {
		t.Fatalf("stream %s: %d entries (%v), want %d", key, len(entries), err, len(tests))
	}
	var lastID string
	for i, e := range entries {
		d, ok := e.Values["d"].(string)
		if !ok || len(e.Values) != 1 {
			t.Fatalf("entry %s: want exactly field d, got %v", e.ID, e.Values)
		}
		if want := `{"_event_id":"` + e.ID + `",` + strings.TrimPrefix(d, "{"); pubs[i].raw != want {
			t.Errorf("entry %d: published %q, want %q", i, pubs[i].raw, want)
		}
		lastID = e.ID
	}
	// Spaces and '%' went through hiredis escaped and came back as they were.
	if d := entries[0].Values["d"].(string); !strings.Contains(d, `"short_message":"hello world from python"`) {
		t.Errorf("stream entry %q: spaces not restored", d)
	}
	if d := entries[3].Values["d"].(string); !strings.Contains(d, `"short_message":"tagged 100% done"`) {
		t.Errorf("stream entry %q: '%%' not restored", d)
	}
	// The shared ID sequence and the channel registry are kept as
	// logviewer's ingest keeps them.
	state, err := c.HGetAll(ctx, "logviewer:state").Result()
	if err != nil || state["epoch"] != entries[0].ID || state["ms"]+"-"+state["seq"] != lastID {
		t.Errorf("logviewer:state = %v (%v), want epoch %s and last ID %s", state, err, entries[0].ID, lastID)
	}
	if _, err := c.ZScore(ctx, "logviewer:channels", channel).Result(); err != nil {
		t.Errorf("channel %q not in the registry logviewer:channels: %v", channel, err)
	}
}

// TestRsyslogEscapesRoundTrip: text that looks like the escapes the config
// uses on the way to hiredis (\u0020, \u0025, backslashes, '%s') arrives
// unchanged.
func TestRsyslogEscapesRoundTrip(t *testing.T) {
	r, rs := startRsyslogToRedis(t)
	sub := subscribeAll(t, r)
	for _, msg := range []string{`lit \u0020 and \\u0025 kept`, `%s %d %% %b`, `trailing backslash \`, `  two leading spaces`} {
		sendRaw(t, "udp", rs.SyslogAddr, "<14>app: "+msg)
		p := nextPublished(t, sub)
		checkTemplateRecord(t, p.fields, msg, time.Now().Add(-recordTimeout))
	}
}

// TestRsyslogToStreamNode: rsyslogd (drop-in config) → Redis → logviewer
// --role stream → WebSocket client, for a python3 UDP line and a python3 TCP
// (NUL-framed) line.
func TestRsyslogToStreamNode(t *testing.T) {
	r, rs := startRsyslogToRedis(t)
	d := testsupport.StartDaemon(t, "--role", "stream", "--redis", r.URL())
	records := openWS(t, strings.Replace(d.HTTPURL, "http://", "ws://", 1)+"/ws/*")

	// The stream node subscribes to Redis in the background: probe until
	// the first record arrives, then expect the rest exactly once each.
	var first map[string]any
	testsupport.Eventually(t, recordTimeout, func() bool {
		testsupport.SendPython(t, rs.SyslogAddr, "udp", "warning:hello over rsyslog")
		select {
		case first = <-records:
			return true
		case <-time.After(500 * time.Millisecond):
			return false
		}
	}, "no record over WebSocket")
	checkTemplateRecord(t, first, "hello over rsyslog", time.Now().Add(-2*recordTimeout))
	if first["_channel"] != "localhost" {
		t.Errorf("_channel = %v, want localhost", first["_channel"])
	}

	before := time.Now().Add(-time.Second)
	testsupport.SendPython(t, rs.SyslogAddr, "tcp", "info:tcp through rsyslog", "error:second tcp line")
	for _, want := range []string{"tcp through rsyslog", "second tcp line"} {
		var f map[string]any
		for f == nil || f["short_message"] == "hello over rsyslog" { // late repeats of the probe
			select {
			case f = <-records:
			case <-time.After(recordTimeout):
				t.Fatalf("no record %q over WebSocket within %v", want, recordTimeout)
			}
		}
		checkTemplateRecord(t, f, want, before)
	}
}

// openWS opens a WebSocket and returns its records (frames with a
// short_message; notices are skipped) as they arrive.
func openWS(t *testing.T, url string) <-chan map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		t.Fatalf("websocket dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	out := make(chan map[string]any, 1024)
	go func() {
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				t.Errorf("websocket frame is not JSON: %v: %q", err, data)
				return
			}
			if _, ok := f["short_message"]; ok {
				out <- f
			}
		}
	}()
	return out
}

// TestRewriteRsyslogConf: the rewrite sets parameters by name only, and
// refuses a name the config does not have.
func TestRewriteRsyslogConf(t *testing.T) {
	conf := `input(type="imtcp" port="10514")` + "\n" + `action(type="omhiredis" server="127.0.0.1" serverport="6379")`
	tests := []struct {
		name    string
		vars    map[string]string
		want    string
		wantErr bool
	}{
		{"port leaves serverport", map[string]string{"port": "1"}, `port="1")` + "\n" + `action(type="omhiredis" server="127.0.0.1" serverport="6379")`, false},
		{"serverport", map[string]string{"serverport": strconv.Itoa(7000)}, `serverport="7000"`, false},
		{"case-insensitive name", map[string]string{"SERVER": "redis"}, `server="redis"`, false},
		{"unknown name", map[string]string{"address": "127.0.0.1"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := testsupport.RewriteRsyslogConf(conf, tc.vars)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
	// The deploy config has every parameter the tests and README rewrite.
	raw, err := os.ReadFile(rsyslogConf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testsupport.RewriteRsyslogConf(string(raw), map[string]string{
		"port": "1", "address": "127.0.0.1", "server": "redis", "serverport": "6380",
	}); err != nil {
		t.Fatal(err)
	}
}

// ingestCase is one input sent to both rsyslog (drop-in config) and
// logviewer's own ingest, with the short_message of each record each
// produces: the measured differences that deploy/rsyslog/README.md lists.
type ingestCase struct {
	name      string
	network   string
	payload   string
	rsyslog   []string // records rsyslog publishes
	logviewer []string // records logviewer publishes; nil: same as rsyslog
}

var ingestCases = []ingestCase{
	{name: "python header-less udp", network: "udp", payload: "<11>hello world from python\x00",
		rsyslog: []string{"hello world from python"}},
	{name: "python header-less tcp, NUL framed", network: "tcp", payload: "<11>one\x00<11>two words\x00",
		rsyslog: []string{"one", "two words"}},
	{name: "header-less with tag and pid", network: "udp", payload: "<11>worker[42]: job done",
		rsyslog: []string{"job done"}},
	{name: "rfc3164", network: "tcp", payload: "<14>Nov 24 10:00:00 web1 nginx[7]: GET / 200\n",
		rsyslog: []string{"GET / 200"}},
	{name: "rfc5424 octet counted with LF inside", network: "tcp", payload: octetFrame("<13>1 2026-11-24T10:00:00.123Z web1 app 7 ID1 [ex@32473 k=\"v\"] first\nsecond"),
		rsyslog: []string{"first\nsecond"}},
	{name: "rfc5424 with BOM", network: "udp", payload: "<13>1 - web1 app - - - \xef\xbb\xbfwith bom",
		rsyslog: []string{"\ufeffwith bom"}, logviewer: []string{"with bom"}},
	// rsyslog tears a multi-line message into one record per line; logviewer
	// keeps a line that starts no new frame with the message before it.
	{name: "multi-line over LF framing", network: "tcp", payload: "<11>app: line one\nline two\n",
		rsyslog: []string{"line one", "line two"}, logviewer: []string{"line one\nline two"}},
	{name: "invalid UTF-8", network: "udp", payload: "<14>app: caf\xc3\xa9 \xff!",
		rsyslog: []string{"café ?!"}, logviewer: []string{"café \ufffd!"}},
	{name: "control character", network: "udp", payload: "<14>app: a\x01b\tc",
		rsyslog: []string{"a\x01b\tc"}},
	{name: "no PRI", network: "tcp", payload: "just some text\n",
		rsyslog: []string{"just some text"}},
	{name: "CRLF", network: "tcp", payload: "<14>Nov 24 10:00:00 web1 app: crlf\r\n",
		rsyslog: []string{"crlf"}},
	{name: "ISO timestamp in an RFC 3164 header", network: "tcp", payload: "<14>2026-11-24T10:00:00Z web1 app: iso\n",
		rsyslog: []string{"iso"}},
	{name: "trailing spaces kept", network: "udp", payload: "<14>app: spaces  ",
		rsyslog: []string{"spaces  "}},
	{name: "empty message", network: "udp", payload: "<14>",
		rsyslog: []string{""}},
	// 64 KiB limit: rsyslog cuts the line and publishes the rest, less one
	// byte, as a second record; logviewer cuts it, marks it _truncated and
	// skips the rest.
	{name: "100 kB line then a normal one", network: "tcp", payload: "<14>" + strings.Repeat("x", 100_000) + "\n<14>after big\n",
		rsyslog:   []string{strings.Repeat("x", 65532), strings.Repeat("x", 100_000-65532-1), "after big"},
		logviewer: []string{strings.Repeat("x", 65532), "after big"}},
}

func octetFrame(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

// abbrev quotes v, cut to 60 bytes with its length when longer.
func abbrev(v any) string {
	s, ok := v.(string)
	if !ok {
		return fmt.Sprintf("%#v", v)
	}
	if len(s) > 60 {
		return fmt.Sprintf("%q... (%d bytes)", s[:60], len(s))
	}
	return strconv.Quote(s)
}

// TestRsyslogVersusIngest sends the same inputs through rsyslog with the
// drop-in config and through logviewer's own ingest, and checks each gives
// the records measured (equal unless listed).
func TestRsyslogVersusIngest(t *testing.T) {
	r, rs := startRsyslogToRedis(t)
	sub := subscribeAll(t, r)
	d := testsupport.StartDaemon(t, "--hostname="+wantHost(t))
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")

	var rsFields, lvFields map[string]any
	for _, tc := range ingestCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.logviewer
			if want == nil {
				want = tc.rsyslog
			}
			sendRaw(t, tc.network, rs.SyslogAddr, tc.payload)
			for _, w := range tc.rsyslog {
				p := nextPublished(t, sub)
				if p.fields["short_message"] != w {
					t.Errorf("rsyslog: short_message %s, want %s", abbrev(p.fields["short_message"]), abbrev(w))
				}
				if tc.name == "rfc3164" {
					rsFields = p.fields
				}
			}
			sendRaw(t, tc.network, d.SyslogAddr, tc.payload)
			for _, w := range want {
				f := sse.NextRecord(t, recordTimeout).Fields(t)
				if f["short_message"] != w {
					t.Errorf("logviewer: short_message %s, want %s", abbrev(f["short_message"]), abbrev(w))
				}
				if tc.name == "rfc3164" {
					lvFields = f
				}
			}
		})
	}
	// Both name the sender and this host alike; rsyslog has only the
	// template's fields.
	for _, k := range []string{"_app_name", "host", "_group"} {
		if rsFields[k] != lvFields[k] {
			t.Errorf("%s: rsyslog %v, logviewer %v", k, rsFields[k], lvFields[k])
		}
	}
	for _, k := range []string{"version", "level", "_facility", "_app"} {
		if _, ok := lvFields[k]; !ok {
			t.Errorf("logviewer record lacks %s: %v", k, lvFields)
		}
		if _, ok := rsFields[k]; ok {
			t.Errorf("rsyslog record has %s: %v", k, rsFields)
		}
	}
}

// TestRsyslogResumeAcrossStreamNodes: rsyslog's records carry event IDs, so
// a client that read some on one stream node resumes on another with its
// last ID and gets every later record once; tail=N backfills them too.
func TestRsyslogResumeAcrossStreamNodes(t *testing.T) {
	r, rs := startRsyslogToRedis(t)
	n1 := testsupport.StartDaemon(t, "--role", "stream", "--redis", r.URL())
	n2 := testsupport.StartDaemon(t, "--role", "stream", "--redis", r.URL())

	first := testsupport.OpenSSE(t, n1.HTTPURL+"/sse/*")
	// The node subscribes in the background: probe until a record comes.
	testsupport.Eventually(t, recordTimeout, func() bool {
		sendRaw(t, "udp", rs.SyslogAddr, "<14>app: probe")
		select {
		case ev := <-first.Events:
			return ev.Event == ""
		case <-time.After(300 * time.Millisecond):
			return false
		}
	}, "no record from rsyslog on stream node 1")
	sendRaw(t, "tcp", rs.SyslogAddr, "<14>app: r1\n<14>app: r2\n<14>app: r3\n")
	var lastID string
	for _, want := range []string{"r1", "r2", "r3"} {
		ev := first.NextRecord(t, recordTimeout)
		for ev.Fields(t)["short_message"] == "probe" {
			ev = first.NextRecord(t, recordTimeout)
		}
		f := ev.Fields(t)
		if f["short_message"] != want || ev.ID == "" || f["_event_id"] != ev.ID {
			t.Fatalf("node 1: got %q id %q (_event_id %v), want %q with an ID", f["short_message"], ev.ID, f["_event_id"], want)
		}
		lastID = ev.ID
	}
	first.Close()

	sendRaw(t, "tcp", rs.SyslogAddr, "<14>app: r4\n<14>app: r5\n<14>app: r6\n")
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	testsupport.Eventually(t, recordTimeout, func() bool {
		n, _ := c.XLen(context.Background(), "logviewer:stream:localhost").Result()
		es, _ := c.XRevRangeN(context.Background(), "logviewer:stream:localhost", "+", "-", 1).Result()
		return n > 0 && len(es) == 1 && strings.Contains(es[0].Values["d"].(string), `"r6"`)
	}, "r6 not in the stream")

	resumed := testsupport.OpenSSE(t, n2.HTTPURL+"/sse/*", "Last-Event-ID: "+lastID)
	for _, want := range []string{"r4", "r5", "r6"} {
		ev := resumed.Next(t, recordTimeout)
		if ev.Event != "" {
			t.Fatalf("node 2: %q notice on resume from %s: %s", ev.Event, lastID, ev.Data)
		}
		if got := ev.Fields(t)["short_message"]; got != want {
			t.Fatalf("node 2 after resume: got %q, want %q", got, want)
		}
	}
	select {
	case ev, ok := <-resumed.Events:
		if ok {
			t.Fatalf("node 2: unexpected event after r6: %+v", ev)
		}
	case <-time.After(300 * time.Millisecond):
	}

	tail := testsupport.OpenSSE(t, n2.HTTPURL+"/sse/localhost?tail=2")
	for _, want := range []string{"r5", "r6"} {
		if got := tail.NextRecord(t, recordTimeout).Fields(t)["short_message"]; got != want {
			t.Fatalf("tail=2: got %q, want %q", got, want)
		}
	}
}

// TestRsyslogInvalidUTF8InHeaderWords measures a limit README.md states:
// mmutf8fix repairs only the part rsyslog's parser took for MSG, so invalid
// UTF-8 in the first two words of a header-less line (taken for HOSTNAME and
// TAG) reaches Redis unrepaired, while the rest of the line is repaired.
func TestRsyslogInvalidUTF8InHeaderWords(t *testing.T) {
	r, rs := startRsyslogToRedis(t)
	sub := subscribeAll(t, r)
	sendRaw(t, "udp", rs.SyslogAddr, "<14>hello caf\xff rest")
	if p := nextPublished(t, sub); utf8.ValidString(p.raw) {
		t.Errorf("payload %q is valid UTF-8: update deploy/rsyslog/README.md, rsyslog repairs this now", p.raw)
	}
	sendRaw(t, "udp", rs.SyslogAddr, "<14>app: caf\xff rest")
	if p := nextPublished(t, sub); !utf8.ValidString(p.raw) || p.fields["short_message"] != "caf? rest" {
		t.Errorf("payload %q: want the message part repaired to \"caf? rest\"", p.raw)
	}
}

// TestRsyslogConfAsDropIn: the config is accepted when included from a
// Debian-style /etc/rsyslog.conf (which already sets a work directory and
// loads its own inputs), as the README says to install it.
func TestRsyslogConfAsDropIn(t *testing.T) {
	bin := testsupport.RequireBinary(t, "rsyslogd", "/usr/sbin/rsyslogd")
	dir := t.TempDir()
	raw, err := os.ReadFile(rsyslogConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir+"/rsyslog.d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/rsyslog.d/logviewer.conf", raw, 0o644); err != nil {
		t.Fatal(err)
	}
	main := `module(load="imuxsock")
$FileCreateMode 0640
$WorkDirectory ` + dir + `
$IncludeConfig ` + dir + `/rsyslog.d/*.conf
*.*;auth,authpriv.none -` + dir + `/syslog
`
	if err := os.WriteFile(dir+"/rsyslog.conf", []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-N1", "-f", dir+"/rsyslog.conf").CombinedOutput()
	if err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
		t.Fatalf("rsyslogd -N1 with the drop-in: %v\n%s", err, out)
	}
}
