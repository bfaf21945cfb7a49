package e2e

import (
	"strings"
	"testing"

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

// TestViewerManyChannelsOneStream: with five channels ticked the page opens
// one stream for exactly those five (it subscribed to "*" and filtered in
// the page past three), and shows only their lines.
func TestViewerManyChannelsOneStream(t *testing.T) {
	d := testsupport.StartDaemon(t, "--dns=false", "--channel-from=app")
	v := openViewer(t, d.HTTPURL+"/#ch=a1,a2,a3,a4,b*")
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "a1", "one"), syslogLine(6, "other", "not wanted"),
		syslogLine(6, "b7", "seven"), syslogLine(6, "a4", "four"))
	v.waitFor(t, `JSON.stringify(msgs()) === JSON.stringify(['one', 'seven', 'four'])`, "the five channels' lines only")
	if !strings.Contains(d.Stderr(), `pattern=a1,a2,a3,a4,b*`) || strings.Contains(d.Stderr(), `pattern=* `) {
		t.Errorf("the page did not open one stream for its five patterns:\n%s", d.Stderr())
	}
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
