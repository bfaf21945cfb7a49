package transform

import "unicode/utf8"

// hexDigits spells the nibbles of \u00XX escapes.
const hexDigits = "0123456789abcdef"

// replacementChar is U+FFFD in UTF-8, written in place of each invalid byte.
const replacementChar = "\uFFFD"

// jsonSafe marks the ASCII bytes copied into a JSON string as they are:
// printable characters but the quote and the backslash.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a quoted JSON string. The result is always valid
// UTF-8: each byte that does not start a valid UTF-8 sequence becomes U+FFFD
// and replaced reports it. Control characters are escaped (\n, \r, \t,
// otherwise \u00XX), and so are U+2028 and U+2029, which JavaScript source
// does not accept raw.
func appendString[T string | []byte](dst []byte, s T) (out []byte, replaced bool) {
	dst = append(dst, '"')
	start := 0 // s[start:i] is safe and not yet copied
	for i := 0; i < len(s); {
		// Skip eight plain ASCII bytes at a time; the byte loop below
		// handles the word that holds anything else.
		for i+8 <= len(s) {
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			if !plainWord(x) {
				break
			}
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		n := runeLen(s[i:])
		switch {
		case n == 0:
			dst = append(dst, s[start:i]...)
			dst = append(dst, replacementChar...)
			replaced = true
			i++
			start = i
		case n == 3 && c == 0xE2 && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			// U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xf])
			i += 3
			start = i
		default:
			i += n
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), replaced
}

const (
	lsb = 0x0101010101010101 // the lowest bit of each byte
	msb = 0x8080808080808080 // the highest bit of each byte
)

// plainWord reports whether all eight bytes packed in x can be copied into
// a JSON string as they are: none is a control character, '"', '\\' or
// non-ASCII.
// The tests are the usual word-at-a-time ones: x-lsb*n & ^x & msb is non-zero
// exactly when some byte of x is below n (n <= 0x80), and a byte equal to v
// is a zero byte of x^(lsb*v).
func plainWord(x uint64) bool {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((x-lsb*0x20)&^x|(q-lsb)&^q|(b-lsb)&^b|x)&msb == 0
}

// runeLen returns the length of the valid UTF-8 sequence of a non-ASCII
// rune at the start of s, or 0 when s does not start with one (a stray
// continuation byte, an overlong form, a surrogate, a value past U+10FFFF or
// a sequence cut short). It accepts exactly what unicode/utf8 accepts.
func runeLen[T string | []byte](s T) int {
	c := s[0]
	var n int
	lo, hi := byte(0x80), byte(0xBF) // bounds of the second byte
	switch {
	case c < 0xC2:
		return 0
	case c < 0xE0:
		n = 2
	case c < 0xF0:
		n = 3
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c < 0xF5:
		n = 4
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 0
	}
	if len(s) < n || s[1] < lo || s[1] > hi {
		return 0
	}
	for k := 2; k < n; k++ {
		if s[k] < 0x80 || s[k] > 0xBF {
			return 0
		}
	}
	return n
}

// AppendJSONString appends s as a quoted JSON string: control characters,
// quotes and backslashes escaped, invalid UTF-8 replaced with U+FFFD. The
// buses use it to add their own members to records.
func AppendJSONString(dst []byte, s string) []byte {
	dst, _ = appendString(dst, s)
	return dst
}
