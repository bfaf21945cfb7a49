package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// health returns /healthz's status and error.
func health(t *testing.T, base string) (string, string) {
	t.Helper()
	var h struct{ Status, Error string }
	testsupport.GetJSON(t, base+"/healthz", &h)
	return h.Status, h.Error
}

// searchCount pages through /api/search oldest first and counts the
// records that match q.
func searchCount(t *testing.T, base, q string) int {
	t.Helper()
	n, cursor := 0, ""
	for range 1000 {
		params := url.Values{"q": {q}, "order": {"asc"}, "limit": {"1000"}}
		if cursor != "" {
			params.Set("cursor", cursor)
		}
		resp, err := http.Get(base + "/api/search?" + params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var end struct {
			Search struct {
				More   bool
				Cursor string
			} `json:"_search"`
		}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), `{"_search"`) {
				json.Unmarshal(sc.Bytes(), &end)
			} else {
				n++
			}
		}
		resp.Body.Close()
		if !end.Search.More {
			return n
		}
		cursor = end.Search.Cursor
	}
	t.Fatalf("search %q: more than 1000 pages", q)
	return 0
}

// TestHistoryDiskFull runs the daemon under a file size limit of 256 KiB
// (as a full disk, writes fail; the limit spares the machine's disks): it
// keeps streaming every line live, says so in /healthz and its log, and
// once the limit is lifted stores lines again, and a resume across the
// lines it could not store gets a gap notice.
func TestHistoryDiskFull(t *testing.T) {
	prlimit := testsupport.RequireBinary(t, "prlimit")
	dir := t.TempDir()
	d := testsupport.StartDaemonUnder(t, []string{prlimit, "--fsize=262144:unlimited", "--"}, nil,
		"--dns=false", "--data-dir="+dir, "--fsync=50ms", "--history=100") // resumes then read the disk
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	pad := strings.Repeat("x", 150)
	sent := 0
	send := func(tag string, n int) {
		lines := make([]string, n)
		for i := range lines {
			lines[i] = fmt.Sprintf("<14>%s n=%d %s", tag, sent+i, pad)
		}
		sendSyslogTCP(t, d.SyslogAddr, lines...)
		sent += n
	}
	receive := func(n int) (first string) {
		for i := range n {
			ev := sse.NextRecord(t, 10*time.Second)
			if i == 0 {
				first = ev.ID
			}
		}
		return first
	}
	send("before", 100)
	firstID := receive(100)

	// Past 256 KiB a write fails: /healthz says degraded, streaming goes on.
	degraded := ""
	for round := 0; round < 200 && degraded == ""; round++ {
		send("full", 500)
		receive(500)
		if status, e := health(t, d.HTTPURL); status == "degraded" {
			degraded = e
		}
	}
	if !strings.Contains(degraded, "not stored on disk") {
		t.Fatalf("/healthz never said degraded, or not why: %q", degraded)
	}
	if !strings.Contains(d.Stderr(), "archive: not storing records") {
		t.Errorf("the log does not say records are not stored:\n%s", d.Stderr())
	}

	// Room again: storing resumes and stays healthy.
	if out, err := exec.Command(prlimit, "--pid", strconv.Itoa(d.PID()), "--fsize=unlimited:unlimited").CombinedOutput(); err != nil {
		t.Fatalf("prlimit --pid: %v: %s", err, out)
	}
	testsupport.Eventually(t, 10*time.Second, func() bool {
		send("recovering", 10)
		receive(10)
		status, _ := health(t, d.HTTPURL)
		return status == "ok" && strings.Count(d.Stderr(), "archive: storing records again") > 0
	}, "storing again after the limit was lifted")
	send("after", 3000) // well past 256 KiB in one segment
	receive(3000)
	if status, e := health(t, d.HTTPURL); status != "ok" {
		t.Fatalf("after recovery /healthz says %s: %s", status, e)
	}
	testsupport.Eventually(t, 10*time.Second, func() bool { return searchCount(t, d.HTTPURL, "after") == 3000 },
		"the 3000 lines sent after recovery are all stored and found")

	// A resume from before the failure crosses the hole: a gap notice
	// comes first.
	resume := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*", "Last-Event-ID: "+firstID)
	if ev := resume.Next(t, 10*time.Second); ev.Event != "gap" {
		t.Fatalf("a resume across records that were not stored starts with %q %s, want a gap notice", ev.Event, ev.Data)
	}
}
