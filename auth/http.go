package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/logviewer/logviewer/internal/ratelog"
)

// CookieName is the viewer's session cookie.
const CookieName = "logviewer_session"

// Defaults for Config.
const (
	DefaultSessionTTL   = 12 * time.Hour
	DefaultMaxFailures  = 10
	DefaultFailedWindow = 5 * time.Minute
)

// Errors of Authenticate and Login.
var (
	ErrNoCredentials  = errors.New("authentication required")
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrTooManyFailed  = errors.New("too many failed logins from this address; try again later")
)

// LimitedError is ErrTooManyFailed with the time to wait.
type LimitedError struct{ RetryAfter time.Duration }

func (e *LimitedError) Error() string { return ErrTooManyFailed.Error() }

// Unwrap lets errors.Is match ErrTooManyFailed.
func (e *LimitedError) Unwrap() error { return ErrTooManyFailed }

// Config configures an Authenticator.
type Config struct {
	// Users is the users file: passwords and channel globs. Required.
	Users *Users
	// ProxyHeader names the header in which a forward-auth proxy passes the
	// user name (e.g. Remote-User); honoured only from TrustedProxies.
	ProxyHeader    string
	TrustedProxies []netip.Prefix
	// SessionTTL is how long a viewer login lasts; DefaultSessionTTL when 0.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure (set it under TLS).
	SecureCookie bool
	// MaxFailures failed logins per FailedWindow per client address, then
	// refusals until the window ends; the defaults when 0.
	MaxFailures  int
	FailedWindow time.Duration
	Logger       *slog.Logger
}

// Authenticator tells who makes a request: the proxy's user header from a
// trusted address, else the session cookie, else HTTP Basic credentials.
type Authenticator struct {
	cfg      Config
	sessions *Sessions
	limit    *FailureLimit
	log      *slog.Logger
	now      func() time.Time

	failLog ratelog.Limiter // "login failed", at most once a second
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Users == nil {
		return nil, errors.New("auth: a users file is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.FailedWindow <= 0 {
		cfg.FailedWindow = DefaultFailedWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := NewSessions(cfg.SessionTTL)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Authenticator{
		cfg:      cfg,
		sessions: s,
		limit:    NewFailureLimit(cfg.MaxFailures, cfg.FailedWindow),
		log:      cfg.Logger,
		now:      time.Now,
	}, nil
}

// Authenticate returns the user who made r. A user named by the proxy but
// not by the users file is returned with no channel to read.
func (a *Authenticator) Authenticate(r *http.Request) (*User, error) {
	remote := remoteAddr(r)
	if a.cfg.ProxyHeader != "" {
		if name := strings.TrimSpace(r.Header.Get(a.cfg.ProxyHeader)); name != "" {
			if a.trusted(remote) {
				if u, ok := a.cfg.Users.Lookup(name); ok {
					return u, nil
				}
				return &User{Name: name}, nil
			}
			a.log.Debug("proxy user header ignored from an untrusted address",
				slog.String("header", a.cfg.ProxyHeader), slog.String("remote", remote.String()))
		}
	}
	if c, err := r.Cookie(CookieName); err == nil {
		if name, ok := a.sessions.Check(c.Value, a.now()); ok {
			if u, ok := a.cfg.Users.Lookup(name); ok {
				return u, nil
			}
		}
	}
	if name, password, ok := r.BasicAuth(); ok {
		return a.verify(a.clientAddr(r, remote), name, password)
	}
	return nil, ErrNoCredentials
}

// Login checks a name and password from the login form and, when they are
// right, sets the session cookie on w.
func (a *Authenticator) Login(w http.ResponseWriter, r *http.Request, name, password string) (*User, error) {
	u, err := a.verify(a.clientAddr(r, remoteAddr(r)), name, password)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: a.sessions.Issue(name, a.now()), Path: "/",
		MaxAge: int(a.cfg.SessionTTL.Seconds()), HttpOnly: true, Secure: a.cfg.SecureCookie,
		SameSite: http.SameSiteStrictMode,
	})
	return u, nil
}

// Logout clears the session cookie.
func (a *Authenticator) Logout(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: a.cfg.SecureCookie, SameSite: http.SameSiteStrictMode})
}

// verify checks a password, within the failed-login limit of addr.
func (a *Authenticator) verify(addr netip.Addr, name, password string) (*User, error) {
	now := a.now()
	if ok, wait := a.limit.Allowed(addr, now); !ok {
		a.logFailure(addr, name, "refused: too many failed logins")
		return nil, &LimitedError{RetryAfter: wait}
	}
	u, ok := a.cfg.Users.Verify(name, password)
	if !ok {
		a.limit.Fail(addr, now)
		a.logFailure(addr, name, "wrong user name or password")
		return nil, ErrBadCredentials
	}
	return u, nil
}

// logFailure logs a failed login, at most one line a second.
func (a *Authenticator) logFailure(addr netip.Addr, name, why string) {
	if n, ok := a.failLog.Allow(); ok {
		a.log.Warn("login failed", slog.String("user", name), slog.String("remote", addr.String()),
			slog.String("reason", why), slog.Int64("suppressed", n))
	}
}

// trusted reports whether a is one of the trusted proxies.
func (a *Authenticator) trusted(addr netip.Addr) bool {
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr is the address failed logins are counted against: the peer,
// or the last X-Forwarded-For hop when the peer is a trusted proxy.
func (a *Authenticator) clientAddr(r *http.Request, remote netip.Addr) netip.Addr {
	if !a.trusted(remote) {
		return remote
	}
	fwd := r.Header.Values("X-Forwarded-For")
	if len(fwd) == 0 {
		return remote
	}
	hops := strings.Split(fwd[len(fwd)-1], ",")
	if ip, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1])); err == nil {
		return ip.Unmap()
	}
	return remote
}

// remoteAddr is the peer's IP address (zero when RemoteAddr holds none).
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	ip, _ := netip.ParseAddr(r.RemoteAddr)
	return ip.Unmap()
}

// ParsePrefixes parses a comma-separated list of CIDRs or single addresses.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
