package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// uiTimeout bounds every wait on the page. The goal (a line on
// screen within 1 s of being sent) is logged, not asserted: the machine that
// runs the tests may be busy, and timing belongs to benchmarks.
const uiTimeout = 10 * time.Second

// uiPrelude defines helpers for the expressions the tests evaluate in the
// page. rows() are the log lines drawn now: the list is virtual, so only
// lines near the viewport have elements.
const uiPrelude = `
const log = document.getElementById('log');
const rows = () => [...log.querySelectorAll('.row:not(.notice)')];
const msgs = () => rows().map((r) => r.querySelector('.c-msg').textContent);
const rowOf = (m) => rows().find((r) => r.querySelector('.c-msg').textContent === m);
const inView = (r) => {
  if (!r) return false;
  const a = r.getBoundingClientRect(), b = log.getBoundingClientRect();
  return a.height > 0 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
};
const inTimeOrder = () => {
  const t = rows().sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
    .map((r) => r.querySelector('.c-time').title);
  return t.every((x, i) => i === 0 || t[i - 1] <= x);
};
const pressed = (id) => document.getElementById(id).getAttribute('aria-pressed') === 'true';
`

// viewer is the logviewer page in a headless Chromium tab.
type viewer struct {
	ctx     context.Context
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	// cspProbe is set by a test that breaks the policy on purpose: the
	// browser must then report a violation.
	cspProbe bool
}

// openViewer starts Chromium, opens url and waits until the page's stream is
// live. When the test ends it fails on any script error or Content Security
// Policy violation the page reported.
func openViewer(t testing.TB, url string) *viewer {
	t.Helper()
	v := &viewer{ctx: testsupport.StartChromium(t)}
	messages := chromedp.Console(v.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			v.mu.Lock()
			v.console = append(v.console, m)
			v.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		violations := 0
		for _, m := range v.console {
			csp := strings.Contains(m.Text, "Content Security Policy")
			if csp {
				violations++
			}
			if m.IsException() || (csp && !v.cspProbe) {
				t.Errorf("page console: %s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
			}
		}
		if v.cspProbe && violations == 0 {
			t.Errorf("the browser reported no Content Security Policy violation")
		}
	})
	v.do(t, chromedp.EmulateViewport(1280, 800))
	v.navigate(t, url)
	return v
}

func (v *viewer) do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, uiTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// navigate loads url afresh (also when only its fragment differs) and waits
// for the stream to be live.
func (v *viewer) navigate(t testing.TB, url string) {
	t.Helper()
	v.do(t, chromedp.Navigate("about:blank"), chromedp.Navigate(url))
	v.waitFor(t, `document.getElementById('conn').dataset.state === 'live'`, "the page's stream is live")
}

// pageEval evaluates expr in the page, with uiPrelude in scope.
func pageEval[T any](t testing.TB, v *viewer, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, uiTimeout)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[T]("(() => {"+uiPrelude+"\nreturn ("+expr+");\n})()"))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return out
}

// waitFor polls the JavaScript condition expr until it holds.
func (v *viewer) waitFor(t testing.TB, expr, what string) {
	t.Helper()
	v.waitForWithin(t, uiTimeout, expr, what)
}

func (v *viewer) waitForWithin(t testing.TB, timeout time.Duration, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !pageEval[bool](t, v, "!!("+expr+")") {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s (%s); last lines drawn: %s", timeout, what, expr,
				pageEval[string](t, v, "JSON.stringify(msgs().slice(-8))"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// click clicks the element found by the CSS selector, as a user would.
func (v *viewer) click(t testing.TB, sel string) {
	t.Helper()
	v.do(t, chromedp.Click(chromedp.CSS(sel)))
}

// key types keys into whatever has the focus.
func (v *viewer) key(t testing.TB, keys string) {
	t.Helper()
	v.do(t, chromedp.KeyEvent(keys))
}

// pressSlash presses "/" as a keyboard does: one keyDown that carries the
// text, so a handler that cancels the keydown also cancels the typing.
// (KeyEvent sends the text in a separate char event, which no handler can
// cancel.)
func (v *viewer) pressSlash(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, uiTimeout)
	defer cancel()
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
		p := input.DispatchKeyEventParams{Type: typ, Key: "/", Code: "Slash", WindowsVirtualKeyCode: 191}
		if typ == input.DispatchKeyEventTypeKeyDown {
			p.Text = "/"
		}
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, p); err != nil {
			t.Fatalf("press /: %v", err)
		}
	}
}

// syslogLine is an RFC 5424 line of facility user at severity sev.
func syslogLine(sev int, app, msg string) string {
	return fmt.Sprintf("<%d>1 %s vm-test %s 4242 - - %s", 8+sev, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"), app, msg)
}

// sendSyslogUDP sends each line as one datagram from the loopback address
// src ("" for 127.0.0.1), so the daemon files them under that channel.
func sendSyslogUDP(t testing.TB, src, addr string, lines ...string) {
	t.Helper()
	if src == "" {
		src = "127.0.0.1"
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatalf("resolve %s: %v", addr, err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, raddr)
	if err != nil {
		t.Fatalf("dial udp %s from %s: %v", addr, src, err)
	}
	defer c.Close()
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatalf("send udp: %v", err)
		}
	}
}

// sendSyslogTCP sends the lines on one TCP connection, each ended by LF.
func sendSyslogTCP(t testing.TB, addr string, lines ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial tcp %s: %v", addr, err)
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	for _, l := range lines {
		if _, err := w.WriteString(l + "\n"); err != nil {
			t.Fatalf("send tcp: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("send tcp: %v", err)
	}
}

func hasClass(classes, c string) bool { return slices.Contains(strings.Fields(classes), c) }

// TestViewer drives the page as a user would, against a real daemon fed
// real syslog datagrams.
func TestViewer(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")

	t.Run("line appears with level colour and channel", func(t *testing.T) {
		start := time.Now()
		sendSyslogUDP(t, "", d.SyslogAddr,
			syslogLine(3, "checkout", "payment declined order=1001"),
			syslogLine(6, "checkout", "order 1002 placed"))
		v.waitFor(t, `inView(rowOf('payment declined order=1001')) && inView(rowOf('order 1002 placed'))`, "both lines on screen")
		t.Logf("lines on screen %v after sending", time.Since(start).Round(time.Millisecond))
		got := pageEval[map[string]string](t, v, `(() => {
			const e = rowOf('payment declined order=1001'), i = rowOf('order 1002 placed');
			const colour = (r, c) => getComputedStyle(r.querySelector(c)).color;
			return {cls: e.className, infoCls: i.className, ch: e.querySelector('.c-ch').textContent,
				app: e.querySelector('.c-app').textContent, lvl: e.querySelector('.c-lvl').textContent,
				errColour: colour(e, '.c-lvl'), infoColour: colour(i, '.c-lvl'), textColour: colour(e, '.c-ch')};
		})()`)
		if !hasClass(got["cls"], "lvl-3") || !hasClass(got["infoCls"], "lvl-6") {
			t.Errorf("level classes %q and %q, want lvl-3 and lvl-6", got["cls"], got["infoCls"])
		}
		if got["ch"] != "127.0.0.1" || got["app"] != "checkout" || got["lvl"] != "err" {
			t.Errorf("channel %q app %q level %q, want 127.0.0.1 checkout err", got["ch"], got["app"], got["lvl"])
		}
		if got["errColour"] == got["infoColour"] || got["errColour"] == got["textColour"] {
			t.Errorf("err level colour %s, info %s, text %s: want three different colours", got["errColour"], got["infoColour"], got["textColour"])
		}
	})

	t.Run("channel list with rate sparkline", func(t *testing.T) {
		v.waitFor(t, `(() => {
			const li = document.querySelector('#channels li[data-channel="127.0.0.1"]');
			const pts = li && li.querySelector('polyline').getAttribute('points');
			return li && /^[0-9.]+k?\/s$/.test(li.querySelector('.rate').textContent) &&
				/\d+ lines/.test(li.querySelector('.meta').textContent) && pts && pts.trim().split(/\s+/).length >= 2;
		})()`, "channel 127.0.0.1 listed with count, rate and a sparkline of two samples or more")
		if !pageEval[bool](t, v, `document.querySelector('#channels li[data-channel="*"] input').checked`) {
			t.Errorf("All channels is not the selection")
		}
	})

	t.Run("filter text and regex", func(t *testing.T) {
		sendSyslogUDP(t, "", d.SyslogAddr,
			syslogLine(6, "search", "alpha needle-7 here"),
			syslogLine(6, "search", "plain hay line"),
			syslogLine(4, "search", "NEEDLE-42 shouting"))
		v.waitFor(t, `inView(rowOf('plain hay line')) && inView(rowOf('NEEDLE-42 shouting'))`, "filter lines on screen")

		v.pressSlash(t)
		v.waitFor(t, `document.activeElement.id === 'filter' && document.getElementById('filter').value === ''`,
			"/ focuses the filter, and is not typed into it")
		v.key(t, "needle")
		v.waitFor(t, `(() => { const m = msgs();
			return m.length === 2 && m.includes('alpha needle-7 here') && m.includes('NEEDLE-42 shouting'); })()`,
			"only the needle lines, case-insensitively")
		marks := pageEval[[]string](t, v, `[...log.querySelectorAll('mark')].map((m) => m.textContent)`)
		if !slices.Equal(marks, []string{"needle", "NEEDLE"}) {
			t.Errorf("highlighted %q, want [needle NEEDLE]", marks)
		}
		if h := pageEval[string](t, v, `location.hash`); !strings.Contains(h, "q=needle") {
			t.Errorf("location.hash %q does not keep the filter", h)
		}

		v.key(t, kb.Escape) // clears the box
		v.waitFor(t, `inView(rowOf('plain hay line')) && document.getElementById('filter').value === ''`, "Esc clears the filter")
		v.do(t, chromedp.SendKeys(chromedp.CSS("#filter"), `/NEEDLE-\d+ here$/`))
		v.waitFor(t, `(() => { const m = msgs(); return m.length === 1 && m[0] === 'alpha needle-7 here'; })()`, "only the regex match")
		if got := pageEval[string](t, v, `rowOf('alpha needle-7 here').querySelector('mark').textContent`); got != "needle-7 here" {
			t.Errorf("regex highlight %q, want %q", got, "needle-7 here")
		}
		v.key(t, kb.Escape)
		v.waitFor(t, `inView(rowOf('plain hay line'))`, "all lines back")
		pageEval[bool](t, v, `(location.hash = '#q=hay', true)`) // an edited address
		v.waitFor(t, `document.getElementById('filter').value === 'hay' && msgs().length === 1 && rowOf('plain hay line')`,
			"the filter follows the address")
		v.key(t, kb.Escape)
		v.waitFor(t, `location.hash === '' && inView(rowOf('NEEDLE-42 shouting'))`, "Esc clears the filter from the address too")
	})

	t.Run("severity filter", func(t *testing.T) {
		setLevel := func(n string) {
			pageEval[bool](t, v, `(() => { const s = document.getElementById('level'); s.value = '`+n+`';
				s.dispatchEvent(new Event('change')); return true; })()`)
		}
		setLevel("3")
		v.waitFor(t, `(() => { const r = rows(); return r.length > 0 && rowOf('payment declined order=1001') &&
			r.every((x) => /lvl-[0-3]\b/.test(x.className)); })()`, "only err and worse")
		if h := pageEval[string](t, v, `location.hash`); !strings.Contains(h, "lvl=3") {
			t.Errorf("location.hash %q does not keep the severity", h)
		}
		setLevel("7")
		v.waitFor(t, `inView(rowOf('order 1002 placed'))`, "all levels back")
	})

	t.Run("link reproduces the view; expand shows the record", func(t *testing.T) {
		v.navigate(t, d.HTTPURL+"/#q=needle&lvl=6&utc=1")
		v.waitFor(t, `(() => { const m = msgs(); return m.length === 2 && m.includes('alpha needle-7 here'); })()`, "the linked filter applies")
		got := pageEval[map[string]string](t, v, `({q: document.getElementById('filter').value, lvl: document.getElementById('level').value,
			utc: String(pressed('utc')), head: document.querySelector('.cols .c-time').textContent})`)
		if got["q"] != "needle" || got["lvl"] != "6" || got["utc"] != "true" || got["head"] != "Time (UTC)" {
			t.Errorf("controls after the link: %v", got)
		}
		v.click(t, `#log .row[data-id] .c-msg`)
		v.waitFor(t, `log.querySelector('.row.open pre.rec')`, "the record opens")
		rec := pageEval[map[string]any](t, v, `(() => { const r = log.querySelector('.row.open');
			return {json: r.querySelector('pre').textContent, time: r.querySelector('.c-time').textContent, id: r.dataset.id}; })()`)
		var fields map[string]any
		if err := json.Unmarshal([]byte(rec["json"].(string)), &fields); err != nil {
			t.Fatalf("expanded record is not JSON: %v\n%s", err, rec["json"])
		}
		if fields["_event_id"] != rec["id"] || fields["_channel"] != "127.0.0.1" || fields["_app"] != "search" {
			t.Errorf("expanded record %v does not belong to row %v", fields, rec["id"])
		}
		ts, _ := fields["timestamp"].(float64)
		want := time.UnixMilli(int64(ts*1000 + 0.5)).UTC().Format("15:04:05.000")
		if rec["time"] != want {
			t.Errorf("UTC time column %q, want %q from timestamp %v", rec["time"], want, ts)
		}
	})

	t.Run("download lines in view", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := chromedp.CallBrowser(v.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
			t.Fatalf("set download behaviour: %v", err)
		}
		v.navigate(t, d.HTTPURL+"/#q=needle")
		v.waitFor(t, `msgs().length === 2`, "the filtered view")
		v.click(t, "#download")
		var lines []string
		testsupport.Eventually(t, uiTimeout, func() bool {
			files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
			if len(files) != 1 {
				return false
			}
			b, err := os.ReadFile(files[0])
			lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			return err == nil && strings.HasSuffix(string(b), "\n")
		}, "one complete .ndjson file downloaded to %s", dir)
		var got []string
		for _, l := range lines {
			var f map[string]any
			if err := json.Unmarshal([]byte(l), &f); err != nil {
				t.Fatalf("download line is not JSON: %v: %q", err, l)
			}
			if id, _ := f["_event_id"].(string); id == "" {
				t.Errorf("download line without _event_id: %q", l)
			}
			got = append(got, f["short_message"].(string))
		}
		slices.Sort(got)
		if want := []string{"NEEDLE-42 shouting", "alpha needle-7 here"}; !slices.Equal(got, want) {
			t.Errorf("downloaded %q, want %q", got, want)
		}
	})

	t.Run("pause holds lines back", func(t *testing.T) {
		v.navigate(t, d.HTTPURL+"/")
		v.waitFor(t, `inView(rowOf('NEEDLE-42 shouting'))`, "backfill drawn")
		v.click(t, "#pause")
		v.waitFor(t, `pressed('pause')`, "paused")
		sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "pause", "held one"), syslogLine(6, "pause", "held two"))
		v.waitFor(t, `document.getElementById('pause').textContent.includes('2 waiting')`, "the page counts two lines waiting")
		if pageEval[bool](t, v, `!!(rowOf('held one') || rowOf('held two'))`) {
			t.Fatalf("a line sent while paused is shown")
		}
		v.key(t, " ") // Space resumes
		v.waitFor(t, `!pressed('pause') && inView(rowOf('held one')) && inView(rowOf('held two'))`, "resume shows the held lines")
		if m := pageEval[[]string](t, v, `msgs().slice(-2)`); !slices.Equal(m, []string{"held one", "held two"}) {
			t.Errorf("last lines %q, want the held ones in order", m)
		}
	})

	t.Run("follow stops on scroll up", func(t *testing.T) {
		var batch []string
		for i := range 60 {
			batch = append(batch, syslogLine(6, "follow", fmt.Sprintf("follow line %02d", i)))
		}
		sendSyslogTCP(t, d.SyslogAddr, batch...)
		v.waitFor(t, `pressed('follow') && inView(rowOf('follow line 59'))`, "following the newest line")
		v.do(t, chromedp.Focus(chromedp.CSS("#log")), chromedp.KeyEvent(kb.PageUp))
		v.waitFor(t, `!pressed('follow') && !document.getElementById('jump').hidden`, "follow off after scrolling up")
		top := pageEval[float64](t, v, `log.scrollTop`)
		batch = batch[:0]
		for i := range 20 {
			batch = append(batch, syslogLine(6, "follow", fmt.Sprintf("after scroll %02d", i)))
		}
		sendSyslogTCP(t, d.SyslogAddr, batch...)
		v.waitFor(t, `document.getElementById('jump').textContent.includes('20 new lines')`, "new lines counted")
		if got := pageEval[float64](t, v, `log.scrollTop`); got != top {
			t.Errorf("scrollTop moved from %v to %v while not following", top, got)
		}
		if pageEval[bool](t, v, `inView(rowOf('after scroll 19'))`) {
			t.Errorf("the page scrolled to the new line while not following")
		}
		v.key(t, kb.End)
		v.waitFor(t, `pressed('follow') && inView(rowOf('after scroll 19'))`, "End resumes following")
	})

	t.Run("markup in a line is text", func(t *testing.T) {
		title := pageEval[string](t, v, `document.title`)
		img := `<img src=x onerror="document.title='pwned'">`
		script := `<script>document.title='pwned'</script>`
		sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(3, "evil", img), syslogLine(3, "evil", script))
		v.waitFor(t, `inView(rowOf(`+jsString(img)+`)) && inView(rowOf(`+jsString(script)+`))`, "both lines shown as literal text")
		id := pageEval[string](t, v, `rowOf(`+jsString(img)+`).dataset.id`)
		v.click(t, `#log .row[data-id="`+id+`"] .c-msg`)
		v.waitFor(t, `log.querySelector('.row.open pre')`, "a record opens")
		// An <img src=x> the page made would have failed to load by the time
		// this probe of the same URL has.
		probe := `new Promise((done) => { const i = new Image(); i.onload = i.onerror = () => done(true); i.src = 'x?probe'; })`
		ctx, cancel := context.WithTimeout(v.ctx, uiTimeout)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](probe, chromedp.EvalAwaitPromise)); err != nil {
			t.Fatalf("image probe: %v", err)
		}
		got := pageEval[map[string]any](t, v, `({title: document.title,
			elements: document.querySelectorAll('#log img, #log script, #channels img, #channels script').length,
			pre: log.querySelector('.row.open pre').textContent})`)
		if got["title"] != title {
			t.Errorf("document.title %q, want %q: a log line ran", got["title"], title)
		}
		if got["elements"] != 0.0 {
			t.Errorf("%v img/script elements in the page's log", got["elements"])
		}
		if pre, _ := got["pre"].(string); !strings.Contains(pre, "document.title='pwned'") {
			t.Errorf("expanded record does not show the markup as text: %q", pre)
		}
	})

	t.Run("clear", func(t *testing.T) {
		v.click(t, "#clear")
		v.waitFor(t, `rows().length === 0 && !document.getElementById('empty').hidden`, "no lines after Clear")
		sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "clear", "first after clear"))
		v.waitFor(t, `inView(rowOf('first after clear'))`, "a new line after Clear")
		if m := pageEval[[]string](t, v, `msgs()`); !slices.Equal(m, []string{"first after clear"}) {
			t.Errorf("lines after Clear %q, want only the new one", m)
		}
	})

	t.Run("pick channels", func(t *testing.T) {
		v.navigate(t, d.HTTPURL+"/")
		sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(5, "other", "from the first host"))
		sendSyslogUDP(t, "127.0.0.2", d.SyslogAddr, syslogLine(5, "other", "from the second host"))
		v.waitFor(t, `inView(rowOf('from the second host')) && inView(rowOf('from the first host')) &&
			document.querySelector('#channels li[data-channel="127.0.0.2"]')`,
			"the second channel is listed")
		v.click(t, `#channels li[data-channel="127.0.0.2"] .name`)
		v.waitFor(t, `location.hash === '#ch=127.0.0.2' && pressed('follow') && rows().length === 1 && rowOf('from the second host')`,
			"only the picked channel")
		v.click(t, `#channels li[data-channel="127.0.0.1"] input`)
		v.waitFor(t, `decodeURIComponent(location.hash) === '#ch=127.0.0.2,127.0.0.1' &&
			inView(rowOf('from the first host')) && inView(rowOf('from the second host')) && inTimeOrder()`,
			"both channels, picked one by one, their backfills merged in time order")
		sendSyslogUDP(t, "127.0.0.2", d.SyslogAddr, syslogLine(5, "other", "second host again"))
		v.waitFor(t, `inView(rowOf('second host again')) && inView(rowOf('from the first host')) &&
			rows().every((r) => ['127.0.0.1', '127.0.0.2'].includes(r.querySelector('.c-ch').textContent))`, "live lines of both channels")
		v.do(t, chromedp.SendKeys(chromedp.CSS("#glob"), "127.0.0.[2]"+kb.Enter))
		v.waitFor(t, `decodeURIComponent(location.hash) === '#ch=127.0.0.[2]' && rows().length === 2 && rowOf('second host again')`,
			"the channels a glob names")
		// Four patterns: one stream for all four, the server picks the
		// channels (TestViewerManyChannelsOneStream checks the stream).
		v.navigate(t, d.HTTPURL+"/#ch=web-1,web-2,db-*,127.0.0.2")
		v.waitFor(t, `rowOf('second host again') && rowOf('from the second host') &&
			rows().every((r) => r.querySelector('.c-ch').textContent === '127.0.0.2')`, "only the four patterns' lines")
		v.click(t, `#channels li[data-channel="*"] .name`)
		v.waitFor(t, `location.hash === '' && rowOf('second host again') && rowOf('from the first host')`, "all channels again")
	})
}

// TestViewerShowsDroppedLines stalls the page while a burst arrives, so the
// server drops lines for it, and checks the page says so, and of which
// channel. The daemon queues at most 1 MiB for its clients: the page's
// stream worker holds 5,000 lines at most, but loopback sockets buffer
// megabytes.
func TestViewerShowsDroppedLines(t *testing.T) {
	const n = 60000
	d := testsupport.StartDaemon(t, "--dns=false", "--client-queue-bytes=1048576")
	v := openViewer(t, d.HTTPURL+"/")
	lines := make([]string, n)
	for i := range lines {
		lines[i] = syslogLine(6, "flood", fmt.Sprintf("flood line %05d %s", i, strings.Repeat("x", 200)))
	}
	// A busy page takes nothing in: its worker stops reading, the sockets
	// and the server's queue fill.
	stalled := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const end = Date.now() + 8000; while (Date.now() < end); return true; })()`))
		stalled <- err
	}()
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	if err := <-stalled; err != nil {
		t.Fatalf("stall the page: %v", err)
	}
	last := fmt.Sprintf("flood line %05d ", n-1)
	v.waitForWithin(t, 60*time.Second, `rows().some((r) => inView(r) && r.querySelector('.c-msg').textContent.startsWith('`+last+`'))`,
		"the last line of the flood is on screen")
	v.waitFor(t, `/[0-9,]+ dropped by the server/.test(document.getElementById('stats').textContent)`, "the status counts dropped lines")
	v.waitFor(t, `/ · [0-9,.k]+ dropped$/.test(document.querySelector('#channels li[data-channel="127.0.0.1"] .meta')?.textContent || '')`,
		"the channel list says which channel lost lines")
	// Notices pass every filter: one that no line matches shows them alone.
	v.do(t, chromedp.SendKeys(chromedp.CSS("#filter"), "no line says this"))
	v.waitFor(t, `log.querySelector('.row.notice.dropped') && rows().length === 0`, "the dropped-lines notice")
	text := pageEval[string](t, v, `log.querySelector('.row.notice.dropped').textContent`)
	if !regexp.MustCompile(`^[0-9,]+ lines dropped`).MatchString(text) {
		t.Errorf("notice %q, want it to say how many lines were dropped", text)
	}
	t.Logf("%s; %s", text, pageEval[string](t, v, `document.getElementById('stats').textContent`))
}

// TestViewerPolicyBlocksInjectedCode checks the policy the daemon sends is
// in force in the browser: script and style injected into the page as
// markup, as a log line would be if it ever reached innerHTML, do not run.
func TestViewerPolicyBlocksInjectedCode(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")
	v.cspProbe = true
	title := pageEval[string](t, v, `document.title`)
	pageEval[bool](t, v, `(() => {
		const s = document.createElement('script');
		s.textContent = 'window.injected = true';
		document.body.append(s);
		const d = document.createElement('div');
		d.setAttribute('onclick', "document.title = 'pwned'");
		d.id = 'probe';
		document.body.append(d);
		d.click();
		return true;
	})()`)
	v.waitFor(t, `document.getElementById('probe')`, "the probe is in the page")
	testsupport.Eventually(t, uiTimeout, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		n := 0
		for _, m := range v.console {
			if strings.Contains(m.Text, "Content Security Policy") {
				n++
			}
		}
		return n >= 2
	}, "the browser reports both violations")
	if got := pageEval[string](t, v, `String(window.injected) + ' ' + document.title`); got != "undefined "+title {
		t.Errorf("injected code ran: %q", got)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestViewerReconnectsAfterRestart stops the daemon under an open page and
// starts it again on the same ports: the page reconnects by itself, shows
// the gap (the new daemon has none of the old history) and the later lines,
// each once.
func TestViewerReconnectsAfterRestart(t *testing.T) {
	args := []string{
		"--dns=false",
		fmt.Sprintf("--http-addr=127.0.0.1:%d", testsupport.FreePort(t)),
		fmt.Sprintf("--syslog-addr=127.0.0.1:%d", testsupport.FreePort(t)),
	}
	d := testsupport.StartDaemon(t, args...)
	v := openViewer(t, d.HTTPURL+"/")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "before restart 1"), syslogLine(6, "app", "before restart 2"))
	v.waitFor(t, `inView(rowOf('before restart 2'))`, "lines before the restart")

	d.Stop(t)
	v.waitFor(t, `document.getElementById('conn').dataset.state === 'reconnecting'`, "the page shows it is reconnecting")
	d = testsupport.StartDaemon(t, args...)
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "after restart 1"), syslogLine(6, "app", "after restart 2"))
	v.waitFor(t, `document.getElementById('conn').dataset.state === 'live' && inView(rowOf('after restart 2'))`, "reconnected, later lines shown")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "app", "after restart 3"))
	v.waitFor(t, `inView(rowOf('after restart 3'))`, "live after the restart")
	if !pageEval[bool](t, v, `!!log.querySelector('.row.notice.gap')`) {
		t.Errorf("no gap notice after the restart")
	}
	got := pageEval[[]string](t, v, `msgs()`)
	want := []string{"before restart 1", "before restart 2", "after restart 1", "after restart 2", "after restart 3"}
	if !slices.Equal(got, want) {
		t.Errorf("lines %q, want each once: %q", got, want)
	}
}

// TestViewerBurst sends 20,000 lines at once: the page keeps a bounded
// number of row elements, shows the last line, and still holds the earlier
// ones in memory.
func TestViewerBurst(t *testing.T) {
	const n = 20000
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")
	lines := make([]string, n)
	for i := range lines {
		lines[i] = syslogLine(6+i%2, "burst", fmt.Sprintf("burst line %05d", i))
	}
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	last := fmt.Sprintf("burst line %05d", n-1)
	v.waitForWithin(t, 60*time.Second, `inView(rowOf('`+last+`'))`, "the last line of the burst is on screen")
	rowsDrawn := pageEval[float64](t, v, `log.querySelectorAll('.row').length`)
	if rowsDrawn < 10 || rowsDrawn > 200 {
		t.Errorf("%v row elements after %d lines, want a screenful, at most 200", rowsDrawn, n)
	}
	stats := pageEval[string](t, v, `document.getElementById('stats').textContent`)
	t.Logf("after the burst: %v row elements; %s", rowsDrawn, stats)
	// Home goes back to the oldest line kept, still with few elements.
	v.key(t, kb.Home)
	v.waitFor(t, `!pressed('follow') && rows().length > 0 && inView(rows().find((r) => r.querySelector('.c-msg').textContent.startsWith('burst line ')))`,
		"the oldest lines are drawn after Home")
	first := pageEval[string](t, v, `[...log.querySelectorAll('.row')].sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
		.find((r) => inView(r)).textContent`)
	if !strings.Contains(first, "burst line 0") {
		t.Errorf("first line on screen after Home is %q, want an early burst line", first)
	}
	if got := pageEval[float64](t, v, `log.querySelectorAll('.row').length`); got > 200 {
		t.Errorf("%v row elements after Home, want at most 200", got)
	}
}

// TestViewerScreenshot runs realistic traffic (cmd/fakelog on one host, a
// database and a job runner on two more loopback addresses) into the page
// and captures it. With LOGVIEWER_UPDATE_SCREENSHOT=1 the traffic runs long
// enough for full sparklines and the picture is written to docs/viewer.png,
// the one the README shows.
func TestViewerScreenshot(t *testing.T) {
	update := os.Getenv("LOGVIEWER_UPDATE_SCREENSHOT") == "1"
	runFor := 3 * time.Second
	if update {
		runFor = 24 * time.Second
	}
	d := testsupport.StartDaemon(t, "--dns=false")
	v := openViewer(t, d.HTTPURL+"/")

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	fakelog := testsupport.Binary(t, "fakelog")
	for _, a := range [][]string{
		{"--app=shop", "--rate=7", "--format=rfc5424", "--seed=7"},
		{"--app=billing", "--rate=2", "--format=rfc3164", "--seed=11"},
	} {
		cmd := exec.CommandContext(ctx, fakelog, append([]string{"--addr=" + d.SyslogAddr, "--proto=tcp"}, a...)...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		if err := cmd.Start(); err != nil {
			t.Fatalf("start fakelog: %v", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cmd.Wait()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		hostTraffic(ctx, d.SyslogAddr)
	}()

	time.Sleep(runFor) // the traffic is the point here: let it run
	stop()
	wg.Wait()

	v.waitFor(t, `['127.0.0.1', '127.0.0.2', '127.0.0.3'].every((c) => {
		const li = document.querySelector('#channels li[data-channel="' + c + '"]');
		return li && li.querySelector('polyline').getAttribute('points'); })`, "three channels with sparklines")
	v.waitFor(t, `rows().length > 20 && log.querySelector('.row.lvl-3, .row.lvl-4')`, "a screenful of mixed levels")
	dir := t.TempDir()
	if update {
		dir = filepath.Join("..", "docs")
	}
	save := func(name string, png []byte) {
		out := filepath.Join(dir, name)
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatalf("write screenshot: %v", err)
		}
		t.Logf("screenshot: %s", out)
	}
	lightBg := pageEval[string](t, v, `getComputedStyle(document.body).backgroundColor`)
	save("viewer.png", v.screenshot(t))

	// The dark theme follows the system; show it filtered, a record open.
	if _, err := chromedp.Call(v.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatalf("emulate dark scheme: %v", err)
	}
	if darkBg := pageEval[string](t, v, `getComputedStyle(document.body).backgroundColor`); darkBg == lightBg {
		t.Errorf("body background %s in both themes", darkBg)
	}
	v.do(t, chromedp.SendKeys(chromedp.CSS("#filter"), `/ 5\d\d |failed|deadlock/`))
	v.waitFor(t, `rows().length > 0 && rows().every((r) => r.querySelector('mark'))`, "filtered to errors")
	id := pageEval[string](t, v, `rows().filter((r) => inView(r)).sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top).pop().dataset.id`)
	v.click(t, `#log .row[data-id="`+id+`"] .c-msg`)
	v.key(t, kb.End) // follow again: the open record is the last, in full
	v.waitFor(t, `inView(log.querySelector('.row.open')) && pressed('follow')`, "the open record is in full view")
	pageEval[bool](t, v, `(document.activeElement.blur(), true)`)
	save("viewer-dark.png", v.screenshot(t))

	// The record views, in the light theme: a traceback open, JSON chips, a
	// flood folded into one counted row.
	if _, err := chromedp.Call(v.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}}); err != nil {
		t.Fatalf("emulate light scheme: %v", err)
	}
	v.navigate(t, d.HTTPURL+"/#ch=127.0.0.3&fold=1")
	var more []string
	for i := range 400 {
		more = append(more, syslogLine(7, "worker", fmt.Sprintf("heartbeat from worker %d: queue depth %d, %d ms since last poll", i%4+1, 40+i%13, 100+i%37)))
		if i%100 == 50 {
			more = append(more, syslogLine(6, "api", fmt.Sprintf(`{"method":"POST","path":"/api/orders","status":201,"ms":%d,"user":"dave","order":"o-%d"}`, 30+i, 8900+i)))
		}
	}
	more = append(more, syslogLine(3, "worker", "job charge_card[o-8813] failed\nTraceback (most recent call last):\n"+
		"  File \"/srv/worker/jobs.py\", line 88, in charge_card\n    resp = gateway.charge(order)\n"+
		"  File \"/srv/worker/gateway.py\", line 41, in charge\n    token = order.meta[\"card_token\"]\nKeyError: 'card_token'"))
	more = append(more, syslogLine(6, "worker", "job send_invoice[8813] succeeded in 0.39s"))
	for _, l := range more {
		sendSyslogUDP(t, "127.0.0.3", d.SyslogAddr, l)
	}
	v.waitFor(t, `rowOf('job send_invoice[8813] succeeded in 0.39s') && log.querySelector('.fold') && log.querySelector('.chip')`, "the folded flood, chips and the traceback")
	pageEval[bool](t, v, `(rows().find((r) => r.querySelector('.more')).querySelector('.c-msg').click(), true)`)
	v.waitFor(t, `log.querySelector('.row.open .msgfull')`, "the traceback open")
	pageEval[bool](t, v, `(() => { const r = log.querySelector('.row.open');
		log.scrollTop = Math.max(0, new DOMMatrix(getComputedStyle(r).transform).m42 - 150); log.dispatchEvent(new Event('scroll')); return true; })()`)
	v.waitFor(t, `inView(log.querySelector('.row.open'))`, "the traceback open in view")
	save("viewer-records.png", v.screenshot(t))

	// The split view: two hosts side by side, the time cursor set.
	v.do(t, chromedp.Navigate(d.HTTPURL+"/split.html#p=ch%3D127.0.0.2&p=ch%3D127.0.0.3%26lvl%3D6"))
	const frames = `[...document.querySelectorAll('iframe')].map((f) => f.contentDocument)`
	v.waitFor(t, frames+`.length === 2 && `+frames+`.every((d) => d && d.querySelectorAll('#log .row').length > 10)`, "two panes with lines")
	pageEval[bool](t, v, `(() => { const doc = `+frames+`[0]; const rows = [...doc.querySelectorAll('#log .row:not(.notice)')];
		rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
		rows[Math.floor(rows.length / 2)].querySelector('.c-time').click(); return true; })()`)
	v.waitFor(t, frames+`[1].querySelector('#log .row.cursor') && `+frames+`[0].querySelector('#log .row.cursor')`, "the time cursor in both panes")
	save("viewer-split.png", v.screenshot(t))
}

// screenshot captures the viewport as PNG and checks it is one.
func (v *viewer) screenshot(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, uiTimeout)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width < 1000 || cfg.Height < 600 {
		t.Fatalf("screenshot is not a full-page PNG: %v %+v", err, cfg)
	}
	return b
}

// hostTraffic plays a database server (127.0.0.2) and a job runner
// (127.0.0.3) logging over UDP in waves, until ctx ends.
func hostTraffic(ctx context.Context, addr string) {
	type l struct {
		sev       int
		app, text string
	}
	hosts := []struct {
		src          string
		usual, worse []l
	}{
		{"127.0.0.2", []l{
			{6, "postgres", "connection authorized: user=shop database=shop application_name=api"},
			{6, "postgres", "checkpoint complete: wrote 1432 buffers (8.7%); 0 WAL file(s) added, 1 removed"},
			{7, "postgres", `autovacuum: processing table "public.sessions"`},
			{6, "pgbouncer", "stats: 212 xacts/s, 1840 queries/s, in 402113 B/s, out 1201977 B/s, xact 4122 us"},
			{7, "postgres", "disconnection: session time: 0:00:02.117 user=shop database=shop host=10.0.2.14"},
			{5, "postgres", "database system is ready to accept connections"},
		}, []l{
			{4, "postgres", "duration: 1532.221 ms  statement: SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC"},
			{3, "postgres", "deadlock detected: process 48121 waits for ShareLock on transaction 9912044"},
			{4, "pgbouncer", "pool shop/shop: 48 of 50 server connections in use"},
		}},
		{"127.0.0.3", []l{
			{6, "worker", "job send_invoice[8812] succeeded in 0.41s"},
			{6, "worker", "job resize_image[img-2291.jpg] succeeded in 1.92s"},
			{7, "worker", "prefetch: 4 tasks reserved from queue emails"},
			{5, "cron", "(root) CMD (/usr/local/bin/backup --incremental /var/lib/shop)"},
			{6, "backup", "backup finished: 2.1 GiB in 48s, 311 files changed"},
			{6, "worker", "job send_welcome_email[u-7731] succeeded in 0.08s"},
			{6, "api", `{"method":"GET","path":"/api/orders/8812","status":200,"ms":41,"user":"carol"}`},
		}, []l{
			{3, "worker", "job charge_card[o-8812] failed\nTraceback (most recent call last):\n" +
				"  File \"/srv/worker/jobs.py\", line 88, in charge_card\n    resp = gateway.charge(order)\n" +
				"KeyError: 'card_token'"},
			{3, "worker", "job sync_inventory[sku-4471] failed: upstream returned HTTP 503, retry 2/5 in 30s"},
			{2, "worker", "out of memory: worker 3 killed (rss 1.9 GiB > limit 1.5 GiB), restarting"},
			{4, "worker", "queue webhooks is 1200 jobs behind"},
		}},
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return
	}
	var conns []*net.UDPConn
	for _, h := range hosts {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(h.src)}, raddr)
		if err != nil {
			return
		}
		defer c.Close()
		conns = append(conns, c)
	}
	r := rand.New(rand.NewPCG(4, 2))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i, h := range hosts {
			// A slow wave per host, so the sparklines have a shape.
			p := 0.25 + 0.2*math.Sin(float64(n)/(12+7*float64(i))+float64(i))
			if r.Float64() > p {
				continue
			}
			x := h.usual[r.IntN(len(h.usual))]
			if r.IntN(100) < 7 {
				x = h.worse[r.IntN(len(h.worse))]
			}
			_, _ = conns[i].Write([]byte(syslogLine(x.sev, x.app, x.text)))
		}
	}
}

// BenchmarkViewerBurst measures how fast the page takes in a burst of
// lines: from the first byte sent to the last line on screen, with the
// longest main-thread task the browser saw (a measure of how responsive
// the page stays).
func BenchmarkViewerBurst(b *testing.B) {
	const n = 10000
	d := testsupport.StartDaemon(b, "--dns=false")
	v := openViewer(b, d.HTTPURL+"/")
	pageEval[bool](b, v, `(window.longest = 0, new PerformanceObserver((l) => {
		for (const e of l.getEntries()) window.longest = Math.max(window.longest, e.duration);
	}).observe({type: 'longtask'}), true)`)
	lines := make([]string, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range lines {
			lines[j] = syslogLine(6, "bench", fmt.Sprintf("bench %d line %05d GET /api/orders/%d 200 12.5ms", i, j, j))
		}
		sendSyslogTCP(b, d.SyslogAddr, lines...)
		v.waitForWithin(b, time.Minute, fmt.Sprintf(`inView(rowOf('bench %d line %05d GET /api/orders/%d 200 12.5ms'))`, i, n-1, n-1), "the last line on screen")
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(pageEval[float64](b, v, `window.longest`), "longest-task-ms")
}
