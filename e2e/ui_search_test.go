package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestViewerHistorySearch searches, from the page, history written before
// a restart of the daemon: the matches fill the list (as text, markup
// included), older pages come on demand, and "Live from the selected line"
// opens the live view resuming at that match.
func TestViewerHistorySearch(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--dns=false", "--data-dir=" + dir, "--history=20"}
	d := testsupport.StartDaemon(t, args...)
	var lines []string
	for i := range 1200 {
		msg := fmt.Sprintf("filler line %d", i)
		if i%100 == 5 {
			msg = fmt.Sprintf("needle %d <b>not bold</b>", i)
		}
		lines = append(lines, syslogLine(6, "hist", msg))
	}
	sendSyslogTCP(t, d.SyslogAddr, lines...)
	testsupport.Eventually(t, uiTimeout, func() bool {
		var ch struct {
			Channels []struct{ Count int } `json:"channels"`
		}
		testsupport.GetJSON(t, d.HTTPURL+"/api/channels", &ch)
		return len(ch.Channels) == 1 && ch.Channels[0].Count == len(lines)
	}, "all lines published")
	d.Stop(t)
	d = testsupport.StartDaemon(t, args...)

	v := openViewer(t, d.HTTPURL+"/")
	v.click(t, "#histtoggle")
	v.waitFor(t, `!document.getElementById('histbar').hidden && document.activeElement.id === 'histq'`, "the search bar open, its box focused")
	v.key(t, "needle")
	pageEval[string](t, v, `document.getElementById('historder').value = 'desc'`)
	v.click(t, "#histgo")
	want := func(from, to int) string {
		var m []string
		for i := from; i < to; i++ {
			m = append(m, fmt.Sprintf("'needle %d <b>not bold</b>'", i*100+5))
		}
		return "[" + strings.Join(m, ",") + "]"
	}
	// 12 matches: one page of 500 holds them all.
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(`+want(0, 12)+`)`, "the 12 matches in time order")
	if state := pageEval[string](t, v, `document.getElementById('conn').dataset.state`); state != "idle" {
		t.Errorf("live stream state %q while showing history, want idle", state)
	}
	if n := pageEval[int](t, v, `log.querySelectorAll('b').length`); n != 0 {
		t.Errorf("log text became markup: %d <b> elements", n)
	}
	status := pageEval[string](t, v, `document.getElementById('histstatus').textContent`)
	if !strings.Contains(status, "12 matching lines") {
		t.Errorf("status %q", status)
	}

	t.Run("live from the selected line", func(t *testing.T) {
		id := pageEval[string](t, v, `rowOf('needle 305 <b>not bold</b>').dataset.id`)
		v.click(t, `#log .row[data-id="`+id+`"] .c-msg`)
		v.waitFor(t, `location.hash.includes('sel=`+id+`') && !document.getElementById('histat').hidden &&
			document.getElementById('histat').getAttribute('href').includes('sel=`+id+`')`, "the link to the live view at that line")
		href := pageEval[string](t, v, `document.getElementById('histat').href`)
		v.navigate(t, href)
		// It resumes just before the match: the match, the lines after it, then live lines.
		v.waitFor(t, `msgs().includes('needle 305 <b>not bold</b>') && !msgs().includes('filler line 304')`, "the live view starts at the match")
		sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "hist", "fresh live line"))
		v.waitFor(t, `(() => { log.scrollTop = log.scrollHeight; return msgs().includes('fresh live line'); })()`, "live lines follow")
	})

	t.Run("back to live", func(t *testing.T) {
		v.click(t, "#histtoggle")
		v.key(t, "filler")
		v.click(t, "#histgo")
		v.waitFor(t, `/500 matching lines.*more to read/.test(document.getElementById('histstatus').textContent)`, "a first page of 500")
		v.click(t, "#histmore")
		v.waitFor(t, `/1,?000 matching lines/.test(document.getElementById('histstatus').textContent)`, "a second page")
		v.click(t, "#histlive")
		v.waitFor(t, `document.getElementById('conn').dataset.state === 'live' && document.getElementById('histbar').hidden`, "live again")
	})
}
