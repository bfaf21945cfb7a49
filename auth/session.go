package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sessions issues and checks the viewer's session tokens: the user name and
// an expiry, signed with HMAC-SHA256 under a key made at start. Restarting
// the daemon logs everyone out, which keeps the key off the disk.
type Sessions struct {
	key [32]byte
	ttl time.Duration
}

// NewSessions returns Sessions whose tokens last ttl.
func NewSessions(ttl time.Duration) (*Sessions, error) {
	s := &Sessions{ttl: ttl}
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return s, nil
}

// TTL is how long a token lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// Issue returns a token for user, valid until now + TTL.
func (s *Sessions) Issue(user string, now time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(user)) + "." +
		strconv.FormatInt(now.Add(s.ttl).Unix(), 10)
	return payload + "." + s.sign(payload)
}

// Check returns the user of a token that is well signed and not expired.
func (s *Sessions) Check(token string, now time.Time) (string, bool) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.sign(payload))) {
		return "", false
	}
	name64, exp, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	expiry, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() >= expiry {
		return "", false
	}
	name, err := base64.RawURLEncoding.DecodeString(name64)
	if err != nil {
		return "", false
	}
	return string(name), true
}

func (s *Sessions) sign(payload string) string {
	m := hmac.New(sha256.New, s.key[:])
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
