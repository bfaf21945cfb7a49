package stream

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func getWeb(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp, string(b)
}

func TestWebAssets(t *testing.T) {
	srv := httptest.NewServer(webHandler())
	defer srv.Close()
	tests := []struct {
		name, path, contentType, contains string
	}{
		{"page", "/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"script", "/app.js", "text/javascript; charset=utf-8", "new Worker('stream.js')"},
		{"stream worker", "/stream.js", "text/javascript; charset=utf-8", "text/event-stream"},
		{"style", "/style.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{"icon", "/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := getWeb(t, srv, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q, want %q", got, contentSecurityPolicy)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body has no %q", tc.contains)
			}
			tag := resp.Header.Get("ETag")
			if tag == "" {
				t.Fatalf("no ETag")
			}
			again, _ := getWeb(t, srv, tc.path, "If-None-Match", tag)
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status %d, want 304", tag, again.StatusCode)
			}
		})
	}
	t.Run("unknown file", func(t *testing.T) {
		resp, _ := getWeb(t, srv, "/nope.js")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

// TestContentSecurityPolicy checks the directives that keep a log line from
// running as code, one by one.
func TestContentSecurityPolicy(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(contentSecurityPolicy, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		directives[f[0]] = strings.Join(f[1:], " ")
	}
	want := map[string]string{
		"default-src":     "'self'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self'",
		"object-src":      "'none'",
		"base-uri":        "'none'",
		"frame-ancestors": "'self'", // the split view frames the viewer, nobody else may
	}
	for k, v := range want {
		if directives[k] != v {
			t.Errorf("%s = %q, want %q", k, directives[k], v)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "unsafe-hashes", "*", "http:", "https:"} {
		for k, v := range directives {
			for _, src := range strings.Fields(v) {
				if strings.Trim(src, "'") == bad {
					t.Errorf("%s allows %s", k, src)
				}
			}
		}
	}
}

func readWeb(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(webFiles, "web/"+name)
	if err != nil {
		t.Fatalf("embedded %s: %v", name, err)
	}
	return string(b)
}

// TestIndexHasNoInlineCode checks the page needs nothing the policy forbids:
// no inline script or style, no event-handler attributes, no javascript:
// URLs, and only its own files.
func TestIndexHasNoInlineCode(t *testing.T) {
	page := readWeb(t, "index.html")
	tests := []struct {
		name string
		re   *regexp.Regexp
	}{
		{"inline script", regexp.MustCompile(`(?is)<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{"style element", regexp.MustCompile(`(?i)<style\b`)},
		{"style attribute", regexp.MustCompile(`(?i)\sstyle\s*=`)},
		{"event handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=`)},
		{"javascript: URL", regexp.MustCompile(`(?i)javascript:`)},
		{"foreign URL", regexp.MustCompile(`(?i)(?:src|href)\s*=\s*"(?:[a-z]+:)?//`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m := tc.re.FindString(page); m != "" {
				t.Errorf("index.html has %s: %q", tc.name, m)
			}
		})
	}
	t.Run("every script has src", func(t *testing.T) {
		tags := regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(page, -1)
		if len(tags) == 0 {
			t.Fatal("index.html loads no script")
		}
		for _, tag := range tags {
			if !regexp.MustCompile(`\ssrc="[^"]+"`).MatchString(tag) {
				t.Errorf("script without src: %s", tag)
			}
		}
	})
	t.Run("referenced files are embedded", func(t *testing.T) {
		refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1)
		if len(refs) < 3 {
			t.Fatalf("found only %d references in index.html", len(refs))
		}
		for _, r := range refs {
			if r[1] == "./" {
				continue
			}
			readWeb(t, r[1])
		}
	})
}

// TestViewerScriptHasNoMarkupSinks keeps log text out of HTML parsing and
// code evaluation: the script must not use any API that parses a string as
// markup or code.
func TestViewerScriptHasNoMarkupSinks(t *testing.T) {
	for _, name := range []string{"app.js", "stream.js", "split.js", "query.js", "search.js"} {
		script := readWeb(t, name)
		for _, sink := range []string{
			"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment",
			"DOMParser", "eval(", "new Function", "setTimeout('", `setTimeout("`, "setAttribute('style'",
			`setAttribute("style"`, "setAttribute('on", `setAttribute("on`, "srcdoc", "javascript:",
		} {
			if strings.Contains(script, sink) {
				t.Errorf("%s uses %s", name, sink)
			}
		}
	}
}
