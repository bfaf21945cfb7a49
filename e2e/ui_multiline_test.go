package e2e

import (
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
