// Package auth decides who makes a request and which channels they may
// read: users from an htpasswd file with bcrypt hashes and channel globs,
// signed session cookies for the viewer, HTTP Basic for API clients, a
// forward-auth proxy's user header from trusted addresses, and a limit on
// failed logins per client address. It knows nothing of streams.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/logviewer/logviewer/internal/glob"
)

// User is who made a request and what they may read.
type User struct {
	Name string
	// All is true when the user reads every channel; else Globs lists the
	// channel globs they may read (none: nothing).
	All   bool
	Globs []string
}

// Anonymous returns the user of every request when authentication is off:
// no name, every channel.
func Anonymous() *User { return &User{All: true} }

// CanRead reports whether u may read channel.
func (u *User) CanRead(channel string) bool {
	if u.All {
		return true
	}
	for _, g := range u.Globs {
		if glob.Match(g, channel) {
			return true
		}
	}
	return false
}

// userEntry is one line of the users file.
type userEntry struct {
	hash  []byte // bcrypt; empty: no password login (proxy only)
	all   bool
	globs []string
}

// maxVerified bounds the cache of passwords already checked.
const maxVerified = 4096

// Users holds the users file, reloaded when it changes on disk. A file that
// no longer parses keeps the users last loaded (and is logged).
type Users struct {
	path string
	log  *slog.Logger

	dummy       []byte // checked against for unknown names, so they take as long to refuse as a wrong password
	maxVerified int    // bounds verified: maxVerified, lower in tests

	mu       sync.RWMutex
	users    map[string]userEntry
	stamp    fileStamp
	verified map[[32]byte]bool // sha256(name, password) checked by bcrypt since the last load
}

// fileStamp tells whether a file changed since it was read.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// LoadUsers reads the users file at path: one user per line,
// "name:bcrypt-hash[:glob,glob...]" as htpasswd -nbB writes it plus an
// optional list of the channel globs the user may read (no third field:
// every channel). An empty hash ("bob::web-*") names a user who logs in only
// through the forward-auth proxy. Blank lines and lines starting with '#'
// are skipped.
func LoadUsers(path string, log *slog.Logger) (*Users, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), 5) // htpasswd -B's cost
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	u := &Users{path: path, log: log, dummy: dummy, maxVerified: maxVerified}
	if err := u.load(); err != nil {
		return nil, err
	}
	return u, nil
}

// load reads the file and replaces the users when it parses.
func (u *Users) load() error {
	st, err := stampOf(u.path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	users, err := parseUsers(b)
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	u.mu.Lock()
	u.users, u.stamp, u.verified = users, st, map[[32]byte]bool{}
	u.mu.Unlock()
	return nil
}

// parseUsers parses the users file's content.
func parseUsers(b []byte) (map[string]userEntry, error) {
	users := map[string]userEntry{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: want name:hash[:globs]", n)
		}
		hash, globs, hasGlobs := strings.Cut(rest, ":")
		e := userEntry{hash: []byte(hash), all: !hasGlobs}
		if hash != "" {
			if _, err := bcrypt.Cost(e.hash); err != nil {
				return nil, fmt.Errorf("line %d (%s): not a bcrypt hash (make one with htpasswd -nbB): %w", n, name, err)
			}
		}
		for _, g := range strings.Split(globs, ",") {
			if g = strings.TrimSpace(g); g != "" {
				e.globs = append(e.globs, g)
			}
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("line %d: user %s named twice", n, name)
		}
		users[name] = e
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// Verify checks name's password and returns the user, or false when the
// name is unknown, has no password, or the password is wrong. A password
// that passed once is remembered (as a hash) until the file changes, so that
// API clients sending Basic credentials on every request do not pay bcrypt
// each time.
func (u *Users) Verify(name, password string) (*User, bool) {
	key := sha256.Sum256([]byte(name + "\x00" + password))
	u.mu.RLock()
	e, known := u.users[name]
	ok := u.verified[key]
	u.mu.RUnlock()
	if ok && known {
		return e.user(name), true
	}
	if !known || len(e.hash) == 0 {
		_ = bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return nil, false
	}
	if bcrypt.CompareHashAndPassword(e.hash, []byte(password)) != nil {
		return nil, false
	}
	u.mu.Lock()
	if len(u.verified) >= u.maxVerified {
		clear(u.verified)
	}
	u.verified[key] = true
	u.mu.Unlock()
	return e.user(name), true
}

// Lookup returns the user the file names, whatever their password.
func (u *Users) Lookup(name string) (*User, bool) {
	u.mu.RLock()
	e, ok := u.users[name]
	u.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.user(name), true
}

func (e userEntry) user(name string) *User {
	return &User{Name: name, All: e.all, Globs: e.globs}
}

// Reload re-reads the file when it changed since the last load. It returns
// an error when the file is gone or does not parse; the users last loaded
// stay in force then.
func (u *Users) Reload() error {
	st, err := stampOf(u.path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	u.mu.RLock()
	same := st == u.stamp
	u.mu.RUnlock()
	if same {
		return nil
	}
	if err := u.load(); err != nil {
		return err
	}
	u.mu.RLock()
	n := len(u.users)
	u.mu.RUnlock()
	u.log.Info("users file reloaded", slog.String("path", u.path), slog.Int("users", n))
	return nil
}

// Watch reloads the file every interval until done is closed, logging a
// file that cannot be used (once per change of its error).
func (u *Users) Watch(done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last string
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		err := u.Reload()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != last && err != nil {
			u.log.Warn("users file not reloaded; the users loaded before stay in force", slog.Any("error", err))
		}
		last = msg
	}
}

// stampOf returns what tells a change of the file at path: its modification
// time, size and inode (a file replaced by a rename has a new one).
func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	if fi.IsDir() {
		return fileStamp{}, errors.New(path + " is a directory")
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ino: ino}, nil
}
