package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// htpasswdLine runs Debian's htpasswd -nbB, as a user of logviewer would,
// and returns its "name:$2y$..." line.
func htpasswdLine(t *testing.T, user, password string) string {
	t.Helper()
	bin := testsupport.RequireBinary(t, "htpasswd")
	out, err := exec.Command(bin, "-nbB", user, password).Output()
	if err != nil {
		t.Fatalf("htpasswd -nbB %s: %v", user, err)
	}
	return strings.TrimSpace(string(out))
}

// writeFile replaces path's content at once (a rename), as editors and
// config managers do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// curl runs curl with args and returns the HTTP status code and the body.
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	bin := testsupport.RequireBinary(t, "curl")
	args = append([]string{"-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"}, args...)
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	var code int
	fmt.Sscan(s[i+1:], &code)
	return code, s[:i]
}

// get does a GET with optional Basic credentials ("user:password") and
// headers, from the loopback address src ("" for the default).
func get(t *testing.T, url, src, creds string, headers ...string) (int, string) {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, ok := strings.Cut(creds, ":"); ok {
		req.SetBasicAuth(u, p)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// channelNames lists /api/channels as the given credentials see it.
func channelNames(t *testing.T, base, creds string, headers ...string) []string {
	t.Helper()
	code, body := get(t, base+"/api/channels", "", creds, headers...)
	if code != http.StatusOK {
		t.Fatalf("/api/channels: %d %s", code, body)
	}
	var list struct {
		Channels []struct{ Name string } `json:"channels"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list.Channels {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// authDaemon starts a daemon that names channels by app, with a users file
// where alice reads web-*, root reads everything and bob (proxy only) db-*.
func authDaemon(t *testing.T, extra ...string) (*testsupport.Daemon, string) {
	t.Helper()
	users := filepath.Join(t.TempDir(), "users")
	writeFile(t, users, htpasswdLine(t, "alice", "alice pw")+":web-*\n"+
		htpasswdLine(t, "root", "root pw")+"\nbob::db-*\n")
	args := append([]string{"--dns=false", "--channel-from=app", "--auth-file=" + users}, extra...)
	return testsupport.StartDaemon(t, args...), users
}

// TestBasicAuth: with an auth file every route but /healthz needs
// credentials; curl with the right ones reads, wrong ones get 401, repeated
// failures get 429 from that address, and an edited file takes effect.
func TestBasicAuth(t *testing.T) {
	d, users := authDaemon(t)
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "web-1", "hello web"), syslogLine(6, "db-1", "hello db"))
	testsupport.Eventually(t, 10*time.Second, func() bool { return len(channelNames(t, d.HTTPURL, "root:root pw")) == 2 },
		"root sees channels %v", func() any { return channelNames(t, d.HTTPURL, "root:root pw") })

	for _, path := range []string{"/", "/api/channels", "/sse/*", "/metrics", "/api/me", "/app.js"} {
		code, _ := get(t, d.HTTPURL+path, "", "")
		if path == "/" {
			if code != http.StatusSeeOther {
				t.Errorf("GET / without credentials: %d, want 303 to the login page", code)
			}
			continue
		}
		if code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", path, code)
		}
	}
	for _, path := range []string{"/healthz", "/login", "/login.js", "/style.css"} {
		if code, _ := get(t, d.HTTPURL+path, "", ""); code != http.StatusOK {
			t.Errorf("GET %s without credentials: %d, want 200", path, code)
		}
	}

	if code, body := curl(t, "-u", "alice:alice pw", d.HTTPURL+"/api/channels"); code != 200 || !strings.Contains(body, `"web-1"`) || strings.Contains(body, "db-1") {
		t.Errorf("curl -u alice: %d %s, want 200 listing web-1 only", code, body)
	}
	if code, _ := curl(t, "-u", "alice:wrong", d.HTTPURL+"/api/channels"); code != 401 {
		t.Errorf("curl -u alice:wrong: %d, want 401", code)
	}
	if code, body := curl(t, "-u", "root:root pw", d.HTTPURL+"/metrics"); code != 200 || !strings.Contains(body, "logviewer_ingest_lines_total") {
		t.Errorf("curl /metrics as root: %d", code)
	}

	// The file edited while running: alice now reads db-*.
	writeFile(t, users, htpasswdLine(t, "alice", "alice pw")+":db-*\n"+htpasswdLine(t, "root", "root pw")+"\n")
	testsupport.Eventually(t, 10*time.Second, func() bool {
		return slices.Equal(channelNames(t, d.HTTPURL, "alice:alice pw"), []string{"db-1"})
	}, "alice sees %v, want [db-1]", func() any { return channelNames(t, d.HTTPURL, "alice:alice pw") })

	// Ten failures from one address: then even the right password is refused there.
	for range 10 {
		curl(t, "-u", "alice:guess", d.HTTPURL+"/api/channels")
	}
	if code, _ := curl(t, "-u", "alice:alice pw", d.HTTPURL+"/api/channels"); code != http.StatusTooManyRequests {
		t.Errorf("after 10 failures: %d, want 429", code)
	}
	if !strings.Contains(d.Stderr(), "login failed") {
		t.Errorf("failed logins were not logged")
	}
}

// TestChannelAuthorization: a user limited to web-* never sees another
// channel's record or name, whether they ask for *, a channel by name, a
// tail, or a resume from another channel's event ID, over SSE and WebSocket,
// also for channels that appear after the stream opened.
func TestChannelAuthorization(t *testing.T) {
	d, _ := authDaemon(t)
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "db-1", "secret 1"), syslogLine(6, "web-1", "public 1"))
	root := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*?tail=10", "Authorization: "+basic("root", "root pw"))
	var dbID string
	for range 2 {
		ev := root.NextRecord(t, recordTimeout)
		if ev.Fields(t)["_channel"] == "db-1" {
			dbID = ev.ID
		}
	}
	alice := "Authorization: " + basic("alice", "alice pw")

	if code, _ := get(t, d.HTTPURL+"/sse/db-1", "", "alice:alice pw"); code != http.StatusForbidden {
		t.Errorf("alice opening /sse/db-1: %d, want 403", code)
	}
	if code, _ := get(t, d.HTTPURL+"/ws/db-1", "", "alice:alice pw"); code != http.StatusForbidden {
		t.Errorf("alice opening /ws/db-1: %d, want 403", code)
	}
	if got := channelNames(t, d.HTTPURL, "alice:alice pw"); !slices.Equal(got, []string{"web-1"}) {
		t.Errorf("alice's /api/channels: %v, want [web-1]", got)
	}

	streams := map[string]*testsupport.SSEStream{
		"tail":                  testsupport.OpenSSE(t, d.HTTPURL+"/sse/*?tail=100", alice),
		"resume from db-1's ID": testsupport.OpenSSE(t, d.HTTPURL+"/sse/*?since="+dbID, alice),
		"glob":                  testsupport.OpenSSE(t, d.HTTPURL+"/sse/*-1?tail=100", alice),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.HTTPURL, "http")+"/ws/*?tail=100",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {basic("alice", "alice pw")}}})
	if err != nil {
		t.Fatalf("alice's websocket: %v", err)
	}
	defer ws.CloseNow()

	// New channels after the streams opened: one of hers, one not.
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "db-2", "secret 2"), syslogLine(6, "web-2", "public 2"),
		syslogLine(6, "db-1", "secret 3"), syslogLine(6, "web-1", "public 3"))

	wantAll := []string{"public 1", "public 2", "public 3"}
	for name, s := range streams {
		want := wantAll // the resume too: db-1's record came before public 1
		if name == "glob" {
			want = []string{"public 1", "public 3"}
		}
		for _, w := range want {
			f := s.NextRecord(t, recordTimeout).Fields(t)
			if f["short_message"] != w || !strings.HasPrefix(f["_channel"].(string), "web-") {
				t.Errorf("%s: got %q on %v, want %q", name, f["short_message"], f["_channel"], w)
			}
		}
	}
	for _, w := range wantAll {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("websocket read: %v", err)
		}
		var f map[string]any
		_ = json.Unmarshal(b, &f)
		if f["short_message"] != w {
			t.Errorf("websocket: got %s, want %q", b, w)
		}
	}
	// Nothing of db-* is in flight behind them: a last public line comes next.
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "db-3", "secret 4"), syslogLine(6, "web-1", "public 4"))
	for name, s := range streams {
		if f := s.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "public 4" {
			t.Errorf("%s: got %q, want public 4", name, f["short_message"])
		}
	}
}

func basic(user, password string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// TestProxyAuth: a forward-auth proxy's Remote-User is honoured from a
// trusted address only; the file's globs apply, and a user the file does not
// name reads nothing.
func TestProxyAuth(t *testing.T) {
	d, _ := authDaemon(t, "--auth-proxy-header=Remote-User", "--trusted-proxies=127.0.0.2")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "web-1", "w"), syslogLine(6, "db-1", "d"))
	testsupport.Eventually(t, 10*time.Second, func() bool { return len(channelNames(t, d.HTTPURL, "root:root pw")) == 2 },
		"root sees channels %v", func() any { return channelNames(t, d.HTTPURL, "root:root pw") })
	url := d.HTTPURL + "/api/channels"

	if code, body := get(t, url, "127.0.0.2", "", "Remote-User: bob"); code != 200 || !strings.Contains(body, "db-1") || strings.Contains(body, "web-1") {
		t.Errorf("bob from the trusted proxy: %d %s, want db-1 only", code, body)
	}
	if code, _ := get(t, url, "127.0.0.1", "", "Remote-User: bob"); code != http.StatusUnauthorized {
		t.Errorf("Remote-User from an untrusted address: %d, want 401", code)
	}
	if code, _ := get(t, d.HTTPURL+"/sse/db-1", "127.0.0.2", "", "Remote-User: eve"); code != http.StatusForbidden {
		t.Errorf("eve (not in the file) opening /sse/db-1: %d, want 403", code)
	}
	if code, body := get(t, url, "127.0.0.2", "", "Remote-User: eve"); code != 200 || strings.Contains(body, "-1") {
		t.Errorf("eve's channel list: %d %s, want none", code, body)
	}
}

// TestDNSRebindingRefused: without authentication, a request for a foreign
// Host (a DNS rebinding) is refused on every route, while IP literals,
// localhost and --allow-host names are served.
func TestDNSRebindingRefused(t *testing.T) {
	d := testsupport.StartDaemon(t, "--allow-host=logs.example.com")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(d.HTTPURL, "http://"))
	for host, want := range map[string]int{
		"evil.example:" + port:     http.StatusForbidden,
		"evil.example":             http.StatusForbidden,
		"127.0.0.1:" + port:        http.StatusOK,
		"localhost:" + port:        http.StatusOK,
		"logs.example.com:" + port: http.StatusOK,
	} {
		for _, path := range []string{"/api/channels", "/sse/*?tail=0&format=ndjson"} {
			req, _ := http.NewRequest(http.MethodGet, d.HTTPURL+path, nil)
			req.Host = host
			req.Header.Set("Origin", "http://"+host)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				cancel()
				t.Fatalf("%s %s: %v", host, path, err)
			}
			resp.Body.Close()
			cancel()
			if resp.StatusCode != want {
				t.Errorf("Host %s %s: %d, want %d", host, path, resp.StatusCode, want)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+strings.TrimPrefix(d.HTTPURL, "http://")+"/ws/*",
		&websocket.DialOptions{Host: "evil.example:" + port, HTTPHeader: http.Header{"Origin": {"http://evil.example:" + port}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("websocket for a foreign host: err %v, response %v; want 403", err, resp)
	}
}

// TestMetricsAddr: with authentication /metrics needs credentials on the
// main port, and --metrics-addr serves it to a local Prometheus without.
func TestMetricsAddr(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	d, _ := authDaemon(t, "--metrics-addr="+addr)
	if code, _ := get(t, d.HTTPURL+"/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics on the main port without credentials: %d, want 401", code)
	}
	if code, body := get(t, "http://"+addr+"/metrics", "", ""); code != 200 || !strings.Contains(body, "logviewer_published_total") {
		t.Errorf("--metrics-addr: %d", code)
	}
}

// TestHTTPS: with a certificate the daemon serves HTTPS and HTTP/2 (curl
// checks it against the CA), and a certificate replaced on disk is served
// without a restart.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir)
	cert, key := ca.ServerCert(t, "server")
	d, _ := authDaemon(t, "--tls-cert="+cert, "--tls-key="+key)
	if !strings.HasPrefix(d.HTTPURL, "https://") {
		t.Fatalf("daemon URL %s", d.HTTPURL)
	}
	bin := testsupport.RequireBinary(t, "curl")
	out, err := exec.Command(bin, "-sS", "--max-time", "10", "--http2", "--cacert", ca.File, "-u", "root:root pw",
		"-o", "/dev/null", "-w", "%{http_code} %{http_version}", d.HTTPURL+"/api/channels").CombinedOutput()
	if err != nil || string(out) != "200 2" {
		t.Fatalf("curl --http2 --cacert: %q %v, want 200 over HTTP/2", out, err)
	}
	if code, _ := curl(t, "--cacert", ca.File, d.HTTPURL+"/api/channels"); code != 401 {
		t.Errorf("HTTPS without credentials: %d, want 401", code)
	}
	// A stream over HTTP/2: the record arrives while the response stays open.
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "web-1", "over h2"))
	testsupport.Eventually(t, 10*time.Second, func() bool {
		_, body := curl(t, "--cacert", ca.File, "-u", "root:root pw", d.HTTPURL+"/api/channels")
		return strings.Contains(body, `"web-1"`)
	}, "no channel web-1")
	sse, _ := exec.Command(bin, "-sS", "-N", "--max-time", "2", "--http2", "--cacert", ca.File, "-u", "alice:alice pw",
		d.HTTPURL+"/sse/*?tail=5").Output() // ends by its --max-time: the stream stays open
	if !strings.Contains(string(sse), `"short_message":"over h2"`) || !strings.HasPrefix(string(sse), "retry:") {
		t.Errorf("SSE over HTTP/2: %q", sse)
	}

	serial := func() string {
		c, err := tls.Dial("tcp", strings.TrimPrefix(d.HTTPURL, "https://"), &tls.Config{RootCAs: ca.Pool})
		if err != nil {
			t.Fatalf("tls dial: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	ca.ServerCert(t, "server") // the renewal: same files, new certificate
	testsupport.Eventually(t, 10*time.Second, func() bool { return serial() != before },
		"still serving serial %v", func() any { return serial() })
	if code, _ := curl(t, "--cacert", ca.File, "-u", "root:root pw", d.HTTPURL+"/healthz"); code != 200 {
		t.Errorf("after the renewal: %d", code)
	}
}

// TestViewerLogin: headless Chromium opens the viewer, is sent to the login
// page, fails once, logs in, sees the user's name and the lines of their
// channels only, and logs out.
func TestViewerLogin(t *testing.T) {
	d, _ := authDaemon(t)
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "db-1", "secret line"), syslogLine(6, "web-1", "public line"))
	v := &viewer{ctx: testsupport.StartChromium(t)}
	v.do(t, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(d.HTTPURL+"/"))
	v.waitFor(t, `location.pathname === '/login' && !!document.getElementById('loginform') && document.readyState === 'complete'`, "the viewer sends to the login page")

	login := func(user, password string) {
		v.do(t, chromedp.SetValue(chromedp.CSS("#user"), user), chromedp.SetValue(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS("#loginbtn")))
	}
	login("alice", "not her password")
	v.waitFor(t, `location.search === '?error=wrong' && document.getElementById('loginerror')?.hidden === false`, "a wrong password is said so")

	login("alice", "alice pw")
	v.waitFor(t, `location.pathname === '/' && document.getElementById('conn')?.dataset.state === 'live'`, "logged in, the stream is live")
	v.waitFor(t, `document.getElementById('username')?.textContent === 'alice' && document.getElementById('account')?.hidden === false`,
		"the user's name is shown")
	v.waitFor(t, `msgs().includes('public line')`, "her channel's line is shown")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "db-1", "secret later"), syslogLine(6, "web-1", "public later"))
	v.waitFor(t, `msgs().includes('public later')`, "a later line of her channel is shown")
	if got := pageEval[string](t, v, `JSON.stringify(msgs())`); strings.Contains(got, "secret") {
		t.Errorf("alice's viewer shows another channel's lines: %s", got)
	}
	if got := pageEval[string](t, v, `document.getElementById('channels').textContent`); strings.Contains(got, "db-1") {
		t.Errorf("alice's channel list names db-1: %s", got)
	}
	if !pageEval[bool](t, v, `document.getElementById('noauth').offsetParent === null`) {
		t.Errorf("the no-authentication badge shows on a daemon with users")
	}

	v.click(t, "#logout")
	v.waitFor(t, `location.pathname === '/login'`, "logging out goes back to the login page")
	v.do(t, chromedp.Navigate(d.HTTPURL+"/"))
	v.waitFor(t, `location.pathname === '/login'`, "after logging out the viewer asks to log in again")
}

// TestViewerNoAuthBadge: a daemon with no users listening beyond loopback
// says so on the page.
func TestViewerNoAuthBadge(t *testing.T) {
	port := testsupport.FreePort(t)
	d := testsupport.StartDaemon(t, fmt.Sprintf("--http-addr=0.0.0.0:%d", port))
	v := openViewer(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	v.waitFor(t, `!document.getElementById('noauth').hidden && document.getElementById('noauth').offsetParent !== null &&
		document.getElementById('account').offsetParent === null`,
		"the no-authentication badge shows, and no logout button")
	if !strings.Contains(d.Stderr(), "no authentication and listening beyond loopback") {
		t.Errorf("no warning at start")
	}
}
