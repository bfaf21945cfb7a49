package transform

import (
	"encoding/binary"
	"slices"
	"unicode/utf8"
	"unsafe"
)

// hexDigits spells the nibbles of \u00XX escapes.
const hexDigits = "0123456789abcdef"

// replacementChar is U+FFFD in UTF-8, written in place of each invalid byte.
const replacementChar = "\uFFFD"

// jsonSafe marks the bytes copied into a JSON string as they are: printable
// ASCII characters but the quote and the backslash. It has an entry for
// every byte so that indexing it needs no bounds check.
var jsonSafe = func() (t [256]bool) {
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
	switch v := any(s).(type) {
	case string:
		dst, replaced = appendStringBody(dst, v)
	case []byte:
		dst, replaced = appendBody(dst, v)
	}
	return append(dst, '"'), replaced
}

// bytesOf views s as a byte slice without copying it. The slice must not
// be written to. It is unsafe.Slice(unsafe.StringData(s), len(s)) without
// the checks unsafe.Slice makes, which cannot fail for a string and cost
// as much as the copy of a short one.
func bytesOf(s string) []byte {
	return *(*[]byte)(unsafe.Pointer(&struct {
		string
		cap int
	}{s, len(s)}))
}

// appendStringBody is appendBody for a string.
func appendStringBody(dst []byte, s string) ([]byte, bool) {
	return appendBody(dst, bytesOf(s))
}

// appendBody appends s escaped as the inside of a JSON string, without the
// quotes, as appendString does. Most strings need no escaping: they are
// checked and copied in the same pass, eight or sixteen bytes at a time, the
// last word of a string overlapping the one before it.
func appendBody(dst, s []byte) ([]byte, bool) {
	n := len(s)
	if n > 16 {
		return appendLongBody(dst, s)
	}
	if cap(dst)-len(dst) < 16 {
		dst = slices.Grow(dst, 16)
	}
	if putShortPlain((*[16]byte)(dst[len(dst):len(dst)+16]), s) {
		return dst[:len(dst)+n], false
	}
	return appendEscaped(dst, s)
}

// putShortPlain copies s, of at most 16 bytes, to the start of d, which has
// room for 16, when no byte of s needs escaping, and reports whether it
// did. It may write past len(s) bytes into d.
func putShortPlain(d *[16]byte, s []byte) bool {
	n := len(s)
	if n >= 8 {
		x := binary.LittleEndian.Uint64(s)
		y := binary.LittleEndian.Uint64(s[n-8:])
		if (unsafeBytes(x)|unsafeBytes(y))&msb != 0 {
			return false
		}
		binary.LittleEndian.PutUint64(d[:8], x)
		binary.LittleEndian.PutUint64(d[n-8:n], y)
		return true
	}
	if n >= 4 {
		x := binary.LittleEndian.Uint32(s)
		y := binary.LittleEndian.Uint32(s[n-4:])
		if unsafeBytes(uint64(x)|uint64(y)<<32)&msb != 0 {
			return false
		}
		binary.LittleEndian.PutUint32(d[:4], x)
		binary.LittleEndian.PutUint32(d[n-4:n], y)
		return true
	}
	for i, c := range s {
		if !jsonSafe[c] {
			return false
		}
		d[i] = c
	}
	return true
}

// loadShort returns the bytes of s, of 1 to 16 bytes, packed in two words
// that both hold only bytes of s, and that together hold all of them: from
// eight bytes on, the first eight and the last eight; else the same word
// twice, of the first four bytes and the last four, or for fewer than
// four of s[0], the middle byte, the last byte and five spaces.
func loadShort(s []byte) (x, y uint64) {
	n := len(s)
	switch {
	case n >= 8:
		return binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[n-8:])
	case n >= 4:
		x = uint64(binary.LittleEndian.Uint32(s)) | uint64(binary.LittleEndian.Uint32(s[n-4:]))<<32
	default:
		const spaces = 0x2020202020_000000
		x = uint64(s[0]) | uint64(s[n>>1])<<8 | uint64(s[n-1])<<16 | spaces
	}
	return x, x
}

// plainShort reports whether none of the n bytes (1 to 16) that loadShort
// packed in x and y needs escaping. For fewer than eight, y is x.
func plainShort(x, y uint64, n int) bool {
	u := unsafeBytes(x)
	if n >= 8 {
		u |= unsafeBytes(y)
	}
	return u&msb == 0
}

// storeShort writes the n bytes (1 to 16) that loadShort packed in x and y
// to the start of d.
func storeShort(d *[16]byte, n int, x, y uint64) {
	switch {
	case n >= 8:
		binary.LittleEndian.PutUint64(d[:8], x)
		binary.LittleEndian.PutUint64(d[n-8:n], y)
	case n >= 4:
		binary.LittleEndian.PutUint32(d[:4], uint32(x))
		binary.LittleEndian.PutUint32(d[n-4:n], uint32(x>>32))
	default:
		d[0], d[n>>1], d[n-1] = byte(x), byte(x>>8), byte(x>>16)
	}
}

// appendLongBody is appendBody for strings of more than 16 bytes.
func appendLongBody(dst, s []byte) ([]byte, bool) {
	dst = slices.Grow(dst, len(s))
	if i := copyPlain(dst[len(dst):len(dst)+len(s)], s); i < len(s) {
		return appendEscaped(dst[:len(dst)+i], s[i:])
	}
	return dst[:len(dst)+len(s)], false
}

// copyPlain copies s, of more than 16 bytes, to d, of the same length,
// thirty-two bytes at a time, then sixteen, the last sixteen overlapping
// the ones before, while none of them needs escaping, and returns how many
// it copied, a multiple of 16 short of len(s) when it stopped at a byte to
// escape. It calls nothing, so that its loops keep what they need in
// registers.
func copyPlain(d, s []byte) int {
	n := len(s)
	d = d[:n]
	i := 0
	for ; i < n-32; i += 32 {
		w := s[i : i+32 : i+32]
		x0, x1 := binary.LittleEndian.Uint64(w[0:8]), binary.LittleEndian.Uint64(w[8:16])
		x2, x3 := binary.LittleEndian.Uint64(w[16:24]), binary.LittleEndian.Uint64(w[24:32])
		if (unsafeBytes(x0)|unsafeBytes(x1)|unsafeBytes(x2)|unsafeBytes(x3))&msb != 0 {
			break // for the loop below to find which half
		}
		o := d[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(o[0:8], x0)
		binary.LittleEndian.PutUint64(o[8:16], x1)
		binary.LittleEndian.PutUint64(o[16:24], x2)
		binary.LittleEndian.PutUint64(o[24:32], x3)
	}
	for ; i < n-16; i += 16 {
		x := binary.LittleEndian.Uint64(s[i : i+8])
		y := binary.LittleEndian.Uint64(s[i+8 : i+16])
		if (unsafeBytes(x)|unsafeBytes(y))&msb != 0 {
			return i
		}
		binary.LittleEndian.PutUint64(d[i:i+8], x)
		binary.LittleEndian.PutUint64(d[i+8:i+16], y)
	}
	x := binary.LittleEndian.Uint64(s[n-16:])
	y := binary.LittleEndian.Uint64(s[n-8:])
	if (unsafeBytes(x)|unsafeBytes(y))&msb != 0 {
		return i
	}
	binary.LittleEndian.PutUint64(d[n-16:], x)
	binary.LittleEndian.PutUint64(d[n-8:], y)
	return n
}

// appendEscaped appends s as appendBody does, byte by byte where it must.
func appendEscaped(dst, s []byte) (out []byte, replaced bool) {
	if len(s) <= 16 {
		if out, ok := escapeShortASCII(dst, s); ok {
			return out, false
		}
	}
	start, i := 0, 0 // s[start:i] is safe and not yet copied
	for i < len(s) {
		// Skip plain ASCII bytes, eight at a time where possible; the
		// byte loop below handles the word that holds anything else.
		for len(s)-i >= 8 && unsafeBytes(binary.LittleEndian.Uint64(s[i:]))&msb == 0 {
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
			if start < i {
				dst = append(dst, s[start:i]...)
			}
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
	if start < len(s) {
		dst = append(dst, s[start:]...)
	}
	return dst, replaced
}

// putEscapedASCII writes s, of ASCII bytes, to the start of b as appendBody
// does, each byte from asciiEscapes as a whole word, and returns the length
// written, or -1 when s is not all ASCII. b must have room for the longest
// escape of each byte, and a word at the last.
func putEscapedASCII(b []byte, s []byte) int {
	j := 0
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return -1
		}
		e := asciiEscapes[c]
		binary.LittleEndian.PutUint64(b[j:j+8], e)
		j += int(e >> 56)
	}
	return j
}

// asciiEscapes holds the text of each ASCII byte inside a JSON string, as
// appendEscaped writes it: the byte itself, or an escape of two or six
// bytes, in the low bytes of a word, and its length in the top byte.
var asciiEscapes = func() (t [utf8.RuneSelf]uint64) {
	for c := range t {
		var text string
		switch {
		case jsonSafe[c]:
			text = string(rune(c))
		case c == '"', c == '\\':
			text = `\` + string(rune(c))
		case c == '\n':
			text = `\n`
		case c == '\r':
			text = `\r`
		case c == '\t':
			text = `\t`
		default:
			text = `\u00` + string(hexDigits[c>>4]) + string(hexDigits[c&0xf])
		}
		var w [8]byte
		copy(w[:], text)
		t[c] = binary.LittleEndian.Uint64(w[:]) | uint64(len(text))<<56
	}
	return t
}()

// escapeShortASCII appends s, of at most 16 bytes, as appendBody does when
// it is all ASCII, in a buffer grown once, and reports whether it was.
func escapeShortASCII(dst, s []byte) ([]byte, bool) {
	const room = 16 * len(`\u0000`)
	if cap(dst)-len(dst) < room {
		dst = slices.Grow(dst, room)
	}
	b := dst[len(dst) : len(dst)+room]
	j := 0
	for _, c := range s {
		if jsonSafe[c] {
			b[j] = c
			j++
			continue
		}
		if c >= utf8.RuneSelf {
			return dst, false
		}
		b[j] = '\\'
		switch c {
		case '"', '\\':
			b[j+1] = c
		case '\n':
			b[j+1] = 'n'
		case '\r':
			b[j+1] = 'r'
		case '\t':
			b[j+1] = 't'
		default:
			b[j+1], b[j+2], b[j+3], b[j+4], b[j+5] = 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]
			j += 4
		}
		j += 2
	}
	return dst[:len(dst)+j], true
}

const (
	lsb = 0x0101010101010101 // the lowest bit of each byte
	msb = 0x8080808080808080 // the highest bit of each byte
)

// unsafeBytes returns a word with a bit of msb set when one of the eight
// bytes packed in x cannot be copied into a JSON string as it is: a control
// character, '"', '\\' or a non-ASCII byte; its bits outside msb are
// meaningless. The tests are the usual word-at-a-time ones: x-lsb*n has the
// msb of the lowest byte below n (n <= 0x80) set, and a byte equal to v is
// a zero byte of x^(lsb*v). Bytes from 0x80 on, set in x itself, may give
// false hits in the other terms, which do not matter.
func unsafeBytes(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return (x - lsb*0x20) | (q - lsb) | (b - lsb) | x
}

// runeLen returns the length of the valid UTF-8 sequence of a non-ASCII
// rune at the start of s, or 0 when s does not start with one (a stray
// continuation byte, an overlong form, a surrogate, a value past U+10FFFF or
// a sequence cut short). It accepts exactly what unicode/utf8 accepts.
func runeLen(s []byte) int {
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
	dst = append(dst, '"')
	dst, _ = appendStringBody(dst, s)
	return append(dst, '"')
}
