package stream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/publish"
)

// userKey is the request context key of the authenticated *auth.User.
type userKey struct{}

// userOf returns the user guard put in r's context (Anonymous when none).
func userOf(r *http.Request) *auth.User {
	if u, ok := r.Context().Value(userKey{}).(*auth.User); ok {
		return u
	}
	return auth.Anonymous()
}

// publicPaths are served without credentials: what the login page needs.
var publicPaths = map[string]bool{
	"/healthz": true, "/login": true, "/login.html": true, "/login.js": true,
	"/style.css": true, "/favicon.svg": true,
}

// guard authenticates every request but the public ones, and puts the user
// in its context. Without authentication it refuses a Host that is not an
// IP literal, localhost or an allowed name: a page on a foreign name that a
// DNS rebinding pointed here would otherwise read every log.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Auth == nil {
			if !s.hostAllowed(r.Host) {
				s.log.Debug("request for a foreign host refused", slog.String("host", r.Host),
					slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
				http.Error(w, "403 forbidden: host "+r.Host+" is not served here (see --allow-host)", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if publicPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		u, err := s.cfg.Auth.Authenticate(r)
		var limited *auth.LimitedError
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
		case errors.As(err, &limited):
			w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds())+1))
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		case r.Method == http.MethodGet && (r.URL.Path == "/" || r.URL.Path == "/index.html"):
			http.Redirect(w, r, "/login", http.StatusSeeOther) // a browser opening the viewer
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="logviewer", charset="UTF-8"`)
			http.Error(w, "401 unauthorized: "+err.Error(), http.StatusUnauthorized)
		}
	})
}

// hostAllowed reports whether a Host header names this server when no
// authentication guards it.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // HTTP/1.0 requests carry no Host
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, a := range s.cfg.AllowHosts {
		if hostMatches(a, host) {
			return true
		}
	}
	return false
}

// hostMatches matches a lower-case host against an allowed-host pattern
// ("logs.example.com", "*.example.com", or "*" for any), case-insensitively.
func hostMatches(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSpace(pattern))
	if pattern == "*" {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+rest)
	}
	return pattern == host
}

// authorize checks that the user may open a stream of pattern (a list of
// patterns joined by commas): a channel named outright must be one of
// theirs (403 otherwise); a glob is narrowed to their channels by
// filtering. Everything ("*") is their own globs, so the bus does the
// narrowing and a tail counts their records only.
func authorize(u *auth.User, pattern string) (string, bool) {
	if u.All {
		return pattern, true
	}
	for _, p := range glob.Split(pattern) {
		if !glob.HasMeta(p) && !u.CanRead(p) {
			return pattern, false
		}
	}
	if pattern == "*" && len(u.Globs) > 0 {
		return strings.Join(u.Globs, ","), true
	}
	return pattern, true
}

// filteredSubscription passes on only the records of channels its user may
// read, so that a glob never shows another channel's record or name, and of
// those only what the stream's filter (?q=, ?level=) keeps. It runs on the
// client's goroutine: a costly filter never slows publishing.
type filteredSubscription struct {
	publish.Subscription
	user   *auth.User
	filter *recordFilter // nil: none
}

// Next returns the next events the client may see, waiting past the others.
func (f *filteredSubscription) Next(ctx context.Context, buf []publish.Event) ([]publish.Event, error) {
	start := len(buf)
	for {
		out, err := f.Subscription.Next(ctx, buf)
		kept := out[:start]
		for _, ev := range out[start:] {
			if ev.Kind != publish.EventRecord ||
				(f.user.CanRead(ev.Record.Channel) && (f.filter == nil || f.filter.keep(&ev.Record))) {
				kept = append(kept, ev)
			}
		}
		clear(out[len(kept):]) // let the records left out go
		if len(kept) > start || err != nil {
			return kept, err
		}
		buf = kept
	}
}

// handleLogin serves the login form (GET) and checks it (POST): right
// credentials set the session cookie and go to the viewer, wrong ones come
// back to the form with an error.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if r.Method != http.MethodPost {
		serveWebFile(w, r, "login.html")
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "403 forbidden: cross-site login", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad login form: "+err.Error(), http.StatusBadRequest)
		return
	}
	u, err := s.cfg.Auth.Login(w, r, r.PostForm.Get("user"), r.PostForm.Get("password"))
	var limited *auth.LimitedError
	switch {
	case errors.As(err, &limited):
		http.Redirect(w, r, "/login?error=limited", http.StatusSeeOther)
	case err != nil:
		http.Redirect(w, r, "/login?error=wrong", http.StatusSeeOther)
	default:
		s.log.Info("logged in", slog.String("user", u.Name), slog.String("remote", r.RemoteAddr))
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// handleLogout clears the session cookie and goes back to the login form.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Auth == nil || !sameOrigin(r) {
		http.Error(w, "403 forbidden", http.StatusForbidden)
		return
	}
	s.cfg.Auth.Logout(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameOrigin reports whether a form post comes from a page of this server:
// its Origin, when the browser sends one, names the request's Host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// meResponse is the body of GET /api/me.
type meResponse struct {
	User string `json:"user,omitempty"`
	// Auth is false when the daemon authenticates nobody.
	Auth bool `json:"auth"`
	// Exposed is true when, without authentication, the daemon listens
	// beyond loopback: anyone who reaches it reads every log.
	Exposed bool `json:"exposed,omitempty"`
	// All is true when the user reads every channel; else Channels lists
	// their globs.
	All      bool     `json:"all"`
	Channels []string `json:"channels,omitempty"`
}

// handleMe tells the viewer who is logged in.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u := userOf(r)
	writeJSON(w, http.StatusOK, meResponse{User: u.Name, Auth: s.cfg.Auth != nil, Exposed: s.exposed(),
		All: u.All, Channels: u.Globs})
}

// exposed reports whether the server listens beyond loopback with no
// authentication.
func (s *Server) exposed() bool {
	if s.cfg.Auth != nil || s.listener == nil {
		return false
	}
	return !isLoopbackListener(s.listener.Addr())
}

// isLoopbackListener reports whether a listening address is reachable from
// this machine only.
func isLoopbackListener(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	return ok && ip.Unmap().IsLoopback()
}
