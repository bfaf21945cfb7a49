package publish

import (
	"slices"

	"github.com/logviewer/logviewer/transform"
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
	dst = append(dst, `{"_event_id":`...)
	dst = transform.AppendJSONString(dst, id)
	dst = append(dst, `,"_channel":`...)
	dst = transform.AppendJSONString(dst, channel)
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

// isJSONObject reports whether gelf starts, after white space, with '{'.
func isJSONObject(gelf []byte) bool {
	_, ok := objectBody(gelf)
	return ok
}
