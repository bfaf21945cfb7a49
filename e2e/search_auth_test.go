package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestSearchAuthorization searches the history on disk as users who read
// only some channels: they find only those channels' records, and a
// channel of someone else's named outright is 403.
func TestSearchAuthorization(t *testing.T) {
	d, _ := authDaemon(t, "--data-dir="+t.TempDir())
	sendSyslogUDP(t, "", d.SyslogAddr, syslogLine(6, "db-1", "secret line"), syslogLine(6, "web-1", "public line"))
	messages := func(creds, query string) []string {
		code, body := get(t, d.HTTPURL+"/api/search?"+query, "", creds)
		if code != http.StatusOK {
			t.Fatalf("search %s as %s: %d %s", query, creds, code, body)
		}
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			if !strings.HasPrefix(line, `{"_search"`) {
				out = append(out, messageOf(line))
			}
		}
		slices.Sort(out)
		return out
	}
	testsupport.Eventually(t, recordTimeout, func() bool { return len(messages("root:root pw", "q=line")) == 2 },
		"root finds both lines")
	for _, tc := range []struct{ name, query string }{
		{"every channel", "q=line"},
		{"a glob matching both", "q=line&ch=*-1"},
		{"no query", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := messages("alice:alice pw", tc.query); !slices.Equal(got, []string{"public line"}) {
				t.Errorf("alice finds %q, want only [public line]", got)
			}
		})
	}
	if code, _ := get(t, d.HTTPURL+"/api/search?q=line&ch=db-1", "", "alice:alice pw"); code != http.StatusForbidden {
		t.Errorf("alice searching db-1: %d, want 403", code)
	}
	if code, _ := get(t, d.HTTPURL+"/api/search?q=line", "", ""); code != http.StatusUnauthorized {
		t.Errorf("search without credentials: %d, want 401", code)
	}
}
