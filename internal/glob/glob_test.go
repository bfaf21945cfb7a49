package glob

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, channel string
		want             bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"", "", true},
		{"", "a", false},
		{"web", "web", true},
		{"web", "web1", false},
		{"web", "we", false},
		{"web-*", "web-1", true},
		{"web-*", "web-", true},
		{"web-*", "web", false},
		{"*-1", "web-1", true},
		{"*-1", "web-12", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*b*c", "abcbc", true},
		{"a**c", "ac", true},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaac", false},
		{"app?", "app1", true},
		{"app?", "app", false},
		{"app?", "app12", false},
		{"?", "", false},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[a-c]", "b", true},
		{"[a-c]", "d", false},
		{"[c-a]", "b", true}, // reversed range, as Redis
		{"[^a]", "b", true},
		{"[^a]", "a", false},
		{"[!a]", "b", true},
		{"[!a]", "a", false},
		{"[^a-c]", "d", true},
		{"[^a-c]", "c", false},
		{"[a-]", "-", true}, // '-' before ']' is literal
		{"[a-]", "b", false},
		{`[\]]`, "]", true},
		{`[\-]`, "-", true},
		{`[\-]`, "a", false},
		{`[a\-c]`, "b", false},
		{"[]", "a", false},
		{"[abc", "b", true}, // unterminated set ends with the pattern, as Redis
		{"[abc", "bc", false},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`\?`, "?", true},
		{`\[a]`, "[a]", true},
		{`a\`, `a\`, true}, // a trailing backslash matches itself
		{`a\`, "a", false},
		{"web-[0-9]*", "web-7a", true},
		{"web-[0-9]*", "web-a7", false},
		{"*[0-9]", "cache:1", true},
		{"caf\xc3\xa9", "caf\xc3\xa9", true},
		{"caf?", "caf\xc3\xa9", false}, // byte-wise: '?' is one byte
		{"caf??", "caf\xc3\xa9", true},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"|"+tc.channel, func(t *testing.T) {
			if got := Match(tc.pattern, tc.channel); got != tc.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.channel, got, tc.want)
			}
		})
	}
}

// globEscape makes a pattern that matches exactly s.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FuzzGlobMatch checks properties any channel and pattern must keep: no
// panic, an escaped name matches itself only, '*' around it matches any
// channel containing it, and '*' matches everything.
func FuzzGlobMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"web-*", "web-1"}, {"[a-z]?", "b1"}, {`\[x`, "[x"}, {"[^", "a"}, {"*a*a*", "aaa"}, {`[\`, "x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		if len(pattern) > 256 || len(channel) > 256 {
			return
		}
		Match(pattern, channel) // must not panic
		if !Match("*", channel) {
			t.Errorf("* does not match %q", channel)
		}
		esc := globEscape(channel)
		if !Match(esc, channel) {
			t.Errorf("escaped %q does not match itself", channel)
		}
		if pattern != channel && Match(esc, pattern) {
			t.Errorf("escaped %q matches %q", channel, pattern)
		}
		if !Match("*"+esc+"*", pattern+channel+pattern) {
			t.Errorf("*%s* does not match %q", esc, pattern+channel+pattern)
		}
	})
}

func TestMatchList(t *testing.T) {
	tests := []struct {
		list, name string
		want       bool
	}{
		{"web-*,db-1", "web-3", true},
		{"web-*,db-1", "db-1", true},
		{"web-*,db-1", "db-2", false},
		{"a", "a", true},
		{"a,", "a", true},
		{",a", "", true}, // an empty pattern matches the empty name only
		{"[z-a],x", "m", true},
	}
	for _, tc := range tests {
		if got := MatchList(tc.list, tc.name); got != tc.want {
			t.Errorf("MatchList(%q, %q) = %v, want %v", tc.list, tc.name, got, tc.want)
		}
	}
	if got := Split("web-*,,db-1,"); strings.Join(got, "|") != "web-*|db-1" {
		t.Errorf("Split = %q", got)
	}
}
