package stream

import (
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// originPolicy decides which browser origins may open a stream. The rules
// are those of websocket.AcceptOptions.OriginPatterns, so the check made
// before a WebSocket upgrade and the library's own agree: a request
// without Origin (curl, a server) is allowed; an Origin whose host[:port]
// equals the request's Host is allowed; else the origin must match one of
// the patterns, case-insensitively with path.Match, against host[:port] or,
// when the pattern holds "://", against scheme://host[:port]. "*" allows
// every origin.
type originPolicy struct {
	any      bool
	patterns []string // lower case, valid path.Match patterns
}

// newOriginPolicy keeps the usable patterns of allow, logging bad ones.
func newOriginPolicy(allow []string, log *slog.Logger) originPolicy {
	var p originPolicy
	for _, a := range allow {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "":
			continue
		case a == "*":
			p.any = true
			continue
		}
		if _, err := path.Match(a, ""); err != nil {
			log.Warn("ignoring bad allowed origin pattern", slog.String("pattern", a), slog.Any("error", err))
			continue
		}
		p.patterns = append(p.patterns, a)
	}
	return p
}

// allowed reports whether r may open a stream.
func (p originPolicy) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" and other opaque origins
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	host := strings.ToLower(u.Host)
	full := strings.ToLower(u.Scheme) + "://" + host
	for _, pat := range p.patterns {
		target := host
		if strings.Contains(pat, "://") {
			target = full
		}
		if ok, _ := path.Match(pat, target); ok {
			return true
		}
	}
	return false
}

// checkOrigin answers a refused cross-origin request with 403 and reports
// whether the request may go on.
func (s *Server) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	if s.origins.allowed(r) {
		return true
	}
	s.log.Debug("cross-origin stream refused", slog.String("origin", r.Header.Get("Origin")),
		slog.String("host", r.Host), slog.String("remote", r.RemoteAddr))
	http.Error(w, "403 forbidden: origin "+r.Header.Get("Origin")+" is not allowed to open streams on "+r.Host+
		" (start the server with --allow-origin to allow it)", http.StatusForbidden)
	return false
}
