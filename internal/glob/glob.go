// Package glob matches channel names against the globs of Redis PSUBSCRIBE,
// the one glob language of subscriptions, channel lists and access rules.
package glob

import "strings"

// HasMeta reports whether pattern holds glob syntax; without it a pattern
// matches only the channel of its own name.
func HasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\`) }

// A list is several patterns joined by commas ("web-*,db-1"): it matches a
// name that any of them matches. Channel names never hold a comma.

// MatchList reports whether name matches any pattern of the list.
func MatchList(list, name string) bool {
	for {
		p, rest, more := strings.Cut(list, ",")
		if Match(p, name) {
			return true
		}
		if !more {
			return false
		}
		list = rest
	}
}

// Split returns the patterns of a list, the empty ones left out.
func Split(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Match reports whether channel matches pattern, a glob with the syntax of
// Redis PSUBSCRIBE: '*' matches any run of bytes (also none), '?' any one
// byte, "[abc]" one byte of the set, "[a-z]" one byte in the range (a
// reversed range "[z-a]" means the same), "[^a]" or "[!a]" one byte not in
// the set, and '\' makes the next byte literal, inside a set too. As in
// Redis, an unterminated set ends with the pattern and a trailing '\'
// matches itself. Matching is byte-wise.
//
// It backtracks only to the last '*' seen, which is enough because every
// other token matches exactly one byte; the cost is O(len(pattern) *
// len(channel)) at worst.
func Match(pattern, channel string) bool {
	p, c := 0, 0
	starP, starC := -1, 0 // pattern index after the last '*', channel index it resumes at
	for c < len(channel) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starC = p, c
				continue
			case '?':
				p++
				c++
				continue
			case '[':
				ok, next := matchClass(pattern, p+1, channel[c])
				if ok {
					p = next
					c++
					continue
				}
			case '\\':
				lit, next := pattern[p], p+1
				if p+1 < len(pattern) {
					lit, next = pattern[p+1], p+2
				}
				if lit == channel[c] {
					p = next
					c++
					continue
				}
			default:
				if pattern[p] == channel[c] {
					p++
					c++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starC++
		p, c = starP, starC
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches b against the set that starts at pattern[i] (just after
// its '['). It returns whether b is in the set and the index after the set.
func matchClass(pattern string, i int, b byte) (bool, int) {
	negate := false
	if i < len(pattern) && (pattern[i] == '^' || pattern[i] == '!') {
		negate = true
		i++
	}
	match := false
	for i < len(pattern) && pattern[i] != ']' {
		lo := pattern[i]
		if lo == '\\' && i+1 < len(pattern) {
			i++
			lo = pattern[i]
		}
		i++
		hi := lo
		if i+1 < len(pattern) && pattern[i] == '-' && pattern[i+1] != ']' {
			hi = pattern[i+1]
			i += 2
			if hi == '\\' && i < len(pattern) {
				hi = pattern[i]
				i++
			}
			if lo > hi {
				lo, hi = hi, lo
			}
		}
		if lo <= b && b <= hi {
			match = true
		}
	}
	if i < len(pattern) {
		i++ // the closing ']'
	}
	return match != negate, i
}
