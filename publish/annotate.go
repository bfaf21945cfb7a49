package publish

import (
	"slices"
	"unicode/utf8"
)

// AnnotateJSON appends to dst the GELF object gelf with "_event_id" (id) and
// "_channel" (channel) as its first members:
// {"_event_id":"<id>","_channel":"<channel>",<the members of gelf>}.
// id and channel are escaped as JSON strings (invalid UTF-8 becomes U+FFFD).
// gelf must be a JSON object ("{}" included, leading white space allowed);
// when it is not, only the two annotation members are written, so the
// result is always an object. It allocates only when dst lacks capacity, at
// most once for the usual ASCII id and channel.
func AnnotateJSON(dst []byte, id, channel string, gelf []byte) []byte {
	rest, ok := objectBody(gelf)
	dst = slices.Grow(dst, len(`{"_event_id":"","_channel":"",`)+len(id)+len(channel)+len(rest))
	dst = append(dst, `{"_event_id":"`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `","_channel":"`...)
	dst = appendJSONString(dst, channel)
	dst = append(dst, '"')
	if !ok || isEmptyObjectBody(rest) {
		return append(dst, '}')
	}
	dst = append(dst, ',')
	return append(dst, rest...)
}

// objectBody returns what follows the opening '{' of the object in gelf.
func objectBody(gelf []byte) ([]byte, bool) {
	for i, b := range gelf {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return gelf[i+1:], true
		}
		return nil, false
	}
	return nil, false
}

// isEmptyObjectBody reports whether rest (after '{') closes at once.
func isEmptyObjectBody(rest []byte) bool {
	for _, b := range rest {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return b == '}'
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s escaped as the inside of a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' && b < utf8.RuneSelf {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // valid JSON, but not valid JavaScript source
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// isJSONObject reports whether gelf starts, after white space, with '{'.
func isJSONObject(gelf []byte) bool {
	_, ok := objectBody(gelf)
	return ok
}
