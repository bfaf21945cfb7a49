package stream

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed web
var webFiles embed.FS

// contentSecurityPolicy allows only the viewer's own files: no inline or
// foreign script, no inline style, no plugins, no framing. The viewer sets
// row positions through the CSSOM (element.style), which style-src does not
// govern, and downloads through a blob: link, which is a navigation that no
// fetch directive covers.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'; frame-src 'self'"

// webHandler serves the embedded browser viewer. Every response carries the
// Content-Security-Policy; files carry a content hash as ETag so a browser
// revalidates cheaply and never runs a stale script after an upgrade.
func webHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	etags := webETags(sub)
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // forms then carry their Origin, which /login and /logout check
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		if tag, ok := etags[name]; ok {
			h.Set("ETag", tag)
		}
		files.ServeHTTP(w, r)
	})
}

// serveWebFile serves one embedded file of the viewer (the login page) at
// whatever path was asked.
func serveWebFile(w http.ResponseWriter, r *http.Request, name string) {
	b, err := webFiles.ReadFile("web/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // forms then carry their Origin, which /login and /logout check
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// webETags hashes every embedded file once, at start.
func webETags(files fs.FS) map[string]string {
	tags := map[string]string{}
	_ = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		tags[name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return tags
}
