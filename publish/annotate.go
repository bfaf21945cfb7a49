package publish

import (
	"bytes"
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

// AnnotateSSE builds the record of gelf as one Server-Sent Event,
// "id: <id>\ndata: <json>\n\n", where json is AnnotateJSON's object with
// any CR or LF (only white space between tokens in valid JSON) turned into
// spaces, so that the event's data is one line. It returns the event and
// the object within it. id must hold no CR or LF (event IDs are digits and
// dashes).
func AnnotateSSE(id, channel string, gelf []byte) (event, json []byte) {
	event = make([]byte, 0, len(sseIDPrefix)+len(id)+len(sseDataPrefix)+len(`{"_event_id":"","_channel":"",`)+len(id)+len(channel)+len(gelf)+len(sseEnd))
	event = append(event, sseIDPrefix...)
	event = append(event, id...)
	event = append(event, sseDataPrefix...)
	start := len(event)
	event = AnnotateJSON(event, id, channel, gelf)
	oneLine(event[start:])
	end := len(event)
	event = append(event, sseEnd...)
	return event, event[start:end:end]
}

// oneLine turns every CR and LF of a JSON document into a space. Records
// rarely hold any, so it looks for them with bytes.IndexByte (vectorised)
// rather than at every byte: this runs for every record published.
func oneLine(js []byte) {
	for _, c := range [...]byte{'\n', '\r'} {
		for i := bytes.IndexByte(js, c); i >= 0; {
			js[i] = ' '
			j := bytes.IndexByte(js[i+1:], c)
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
}

// The parts of an SSE event around a record's id and JSON.
const (
	sseIDPrefix   = "id: "
	sseDataPrefix = "\ndata: "
	sseEnd        = "\n\n"
)

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
