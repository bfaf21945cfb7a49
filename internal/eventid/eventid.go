// Package eventid reads the event IDs the buses and the archive share:
// "<a>-<b>", two decimal numbers (an epoch or a Redis entry's milliseconds,
// then a sequence number).
package eventid

import (
	"strconv"
	"strings"
)

// Parse splits s into its two numbers. ok is false unless both parts are
// decimal digits only (no sign, not empty) and fit in 64 bits.
func Parse(s string) (a, b uint64, ok bool) {
	x, y, found := strings.Cut(s, "-")
	if !found || !Digits(x) || !Digits(y) {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(x, 10, 64)
	b, err2 := strconv.ParseUint(y, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return a, b, true
}

// Digits reports whether s is one or more decimal digits.
func Digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
