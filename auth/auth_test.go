package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// htpasswdHash returns a bcrypt hash of password in the "$2y$" form that
// htpasswd -nbB writes.
func htpasswdHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return "$2y$" + strings.TrimPrefix(string(h), "$2a$")
}

func writeUsers(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParseUsers(t *testing.T) {
	h := htpasswdHash(t, "pw")
	tests := []struct {
		name    string
		in      string
		want    map[string]User
		wantErr string
	}{
		{name: "every channel", in: "alice:" + h + "\n", want: map[string]User{"alice": {Name: "alice", All: true}}},
		{name: "globs", in: "alice:" + h + ":web-*, db-1\n", want: map[string]User{"alice": {Name: "alice", Globs: []string{"web-*", "db-1"}}}},
		{name: "empty globs read nothing", in: "alice:" + h + ":\n", want: map[string]User{"alice": {Name: "alice"}}},
		{name: "proxy-only user", in: "bob::web-*\n", want: map[string]User{"bob": {Name: "bob", Globs: []string{"web-*"}}}},
		{name: "comments and blanks", in: "# team\n\n  alice:" + h + "  \n", want: map[string]User{"alice": {Name: "alice", All: true}}},
		{name: "not bcrypt", in: "alice:{SHA}abc\n", wantErr: "not a bcrypt hash"},
		{name: "no colon", in: "alice\n", wantErr: "line 1"},
		{name: "twice", in: "a:" + h + "\na::x\n", wantErr: "named twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseUsers([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d users, want %d", len(got), len(tc.want))
			}
			for name, w := range tc.want {
				u := got[name].user(name)
				if u.Name != w.Name || u.All != w.All || strings.Join(u.Globs, ",") != strings.Join(w.Globs, ",") {
					t.Errorf("user %s = %+v, want %+v", name, *u, w)
				}
			}
		})
	}
}

func TestCanRead(t *testing.T) {
	u := &User{Globs: []string{"web-*", "db-1"}}
	for ch, want := range map[string]bool{"web-1": true, "web-": true, "db-1": true, "db-2": false, "api": false} {
		if got := u.CanRead(ch); got != want {
			t.Errorf("CanRead(%q) = %v, want %v", ch, got, want)
		}
	}
	if (&User{}).CanRead("x") {
		t.Error("a user with no globs reads a channel")
	}
	if !Anonymous().CanRead("x") {
		t.Error("the anonymous user of an open daemon cannot read")
	}
}

func TestUsersVerifyAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeUsers(t, path, "alice:"+htpasswdHash(t, "secret")+":web-*\nbob::db-*\n")
	users, err := LoadUsers(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := users.Verify("alice", "secret"); !ok || u.Name != "alice" || !u.CanRead("web-1") || u.CanRead("db-1") {
		t.Fatalf("alice with her password: %+v %v", u, ok)
	}
	for _, c := range []struct{ name, pw string }{{"alice", "wrong"}, {"bob", ""}, {"carol", "secret"}} {
		if _, ok := users.Verify(c.name, c.pw); ok {
			t.Errorf("%s/%q verified", c.name, c.pw)
		}
	}
	// The file edited: alice's password and globs change, bob is gone.
	writeUsers(t, path, "alice:"+htpasswdHash(t, "new")+":db-*\n")
	if err := users.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := users.Verify("alice", "secret"); ok {
		t.Error("the old password still works after the reload")
	}
	if u, ok := users.Verify("alice", "new"); !ok || !u.CanRead("db-9") || u.CanRead("web-1") {
		t.Errorf("alice after the reload: %+v %v", u, ok)
	}
	if _, ok := users.Lookup("bob"); ok {
		t.Error("bob is still known after the reload")
	}
	// A broken file keeps the users loaded before.
	writeUsers(t, path, "garbage line\n")
	if err := users.Reload(); err == nil {
		t.Error("a broken file reloaded without error")
	}
	if _, ok := users.Verify("alice", "new"); !ok {
		t.Error("a broken file dropped the users loaded before")
	}
}

func TestSessions(t *testing.T) {
	s, err := NewSessions(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	tok := s.Issue("alice:x.y", now)
	if name, ok := s.Check(tok, now.Add(59*time.Minute)); !ok || name != "alice:x.y" {
		t.Fatalf("Check = %q %v", name, ok)
	}
	if _, ok := s.Check(tok, now.Add(time.Hour)); ok {
		t.Error("an expired token passed")
	}
	other, _ := NewSessions(time.Hour)
	for name, bad := range map[string]string{
		"tampered name":      strings.Replace(tok, tok[:4], "Ym9i", 1),
		"other key":          other.Issue("alice:x.y", now),
		"no signature":       tok[:strings.LastIndexByte(tok, '.')],
		"empty":              "",
		"signature replaced": tok[:strings.LastIndexByte(tok, '.')+1] + "AAAA",
	} {
		if _, ok := s.Check(bad, now); ok {
			t.Errorf("%s: token passed", name)
		}
	}
}

func TestFailureLimit(t *testing.T) {
	l := NewFailureLimit(3, time.Minute)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Unix(1_800_000_000, 0)
	for range 3 {
		if ok, _ := l.Allowed(a, now); !ok {
			t.Fatal("refused before the limit")
		}
		l.Fail(a, now)
	}
	if ok, wait := l.Allowed(a, now.Add(10*time.Second)); ok || wait != 50*time.Second {
		t.Fatalf("after 3 failures: allowed %v, wait %v", ok, wait)
	}
	if ok, _ := l.Allowed(b, now); !ok {
		t.Fatal("another address is refused")
	}
	if ok, _ := l.Allowed(a, now.Add(time.Minute)); !ok {
		t.Fatal("still refused after the window")
	}
	l.MaxAddr = 2
	for i := range 5 {
		l.Fail(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), now)
	}
	if len(l.addrs) > 2 {
		t.Fatalf("%d addresses kept, bound 2", len(l.addrs))
	}
}

func TestAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeUsers(t, path, "alice:"+htpasswdHash(t, "secret")+":web-*\nbob::db-*\n")
	users, err := LoadUsers(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Users: users, ProxyHeader: "Remote-User",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, MaxFailures: 2})
	if err != nil {
		t.Fatal(err)
	}
	login := httptest.NewRecorder()
	if _, err := a.Login(login, httptest.NewRequest("POST", "/login", nil), "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	cookie := login.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Name != CookieName {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict", cookie)
	}

	tests := []struct {
		name    string
		remote  string
		setup   func(r *http.Request)
		user    string
		globs   string
		wantErr error
	}{
		{name: "nothing", remote: "192.0.2.1:1", wantErr: ErrNoCredentials},
		{name: "basic", remote: "192.0.2.1:1", setup: func(r *http.Request) { r.SetBasicAuth("alice", "secret") }, user: "alice", globs: "web-*"},
		{name: "basic wrong", remote: "192.0.2.2:1", setup: func(r *http.Request) { r.SetBasicAuth("alice", "x") }, wantErr: ErrBadCredentials},
		{name: "cookie", remote: "192.0.2.1:1", setup: func(r *http.Request) { r.AddCookie(cookie) }, user: "alice", globs: "web-*"},
		{name: "forged cookie", remote: "192.0.2.1:1", setup: func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: CookieName, Value: "Ym9i.9999999999.x"})
		}, wantErr: ErrNoCredentials},
		{name: "proxy trusted", remote: "127.0.0.1:1", setup: func(r *http.Request) { r.Header.Set("Remote-User", "bob") }, user: "bob", globs: "db-*"},
		{name: "proxy unknown user reads nothing", remote: "127.0.0.1:1", setup: func(r *http.Request) { r.Header.Set("Remote-User", "eve") }, user: "eve"},
		{name: "proxy header from untrusted ignored", remote: "192.0.2.1:1", setup: func(r *http.Request) { r.Header.Set("Remote-User", "bob") }, wantErr: ErrNoCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/sse/*", nil)
			r.RemoteAddr = tc.remote
			if tc.setup != nil {
				tc.setup(r)
			}
			u, err := a.Authenticate(r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if u.Name != tc.user || u.All || strings.Join(u.Globs, ",") != tc.globs {
				t.Fatalf("user %+v, want %s reading %q", *u, tc.user, tc.globs)
			}
		})
	}

	// Two failures from one address, then even the right password is refused there.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.9:1"
	r.SetBasicAuth("alice", "x")
	a.Authenticate(r)
	a.Authenticate(r)
	r.SetBasicAuth("alice", "secret")
	var lim *LimitedError
	if _, err := a.Authenticate(r); !errors.As(err, &lim) || lim.RetryAfter <= 0 {
		t.Fatalf("after 2 failures: err %v, want a LimitedError", err)
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes("10.0.0.0/8, 127.0.0.1,::1")
	if err != nil || len(got) != 3 || !got[1].Contains(netip.MustParseAddr("127.0.0.1")) || got[2].Bits() != 128 {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := ParsePrefixes("10.0.0.0/33"); err == nil {
		t.Fatal("bad prefix accepted")
	}
}

// TestVerifiedCacheBounded: the cache of checked passwords never holds more
// than its bound, whatever passwords (right ones, here) come in.
func TestVerifiedCacheBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	var lines []string
	for i := range 5 {
		lines = append(lines, fmt.Sprintf("u%d:%s", i, htpasswdHash(t, "pw")))
	}
	writeUsers(t, path, strings.Join(lines, "\n")+"\n")
	users, err := LoadUsers(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	users.maxVerified = 3
	for i := range 5 {
		if _, ok := users.Verify(fmt.Sprintf("u%d", i), "pw"); !ok {
			t.Fatalf("u%d not verified", i)
		}
		if n := len(users.verified); n > 3 {
			t.Fatalf("%d passwords cached, bound 3", n)
		}
	}
}
