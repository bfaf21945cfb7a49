package publish

import (
	"bytes"
	"slices"
	"strconv"
	"unsafe"

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

// eventRecord builds the Record of a JSON object whose members after its
// '{' are rest (empty: none), published with event ID id (digits and a
// dash: nothing to escape) on channel; both buses make their records with
// it. The record's event, "id: <id>\ndata: <json>\n\n", holds the ID and
// the JSON as parts of it, so one allocation holds all three; json is
// AnnotateJSON's object with any CR or LF (only white space between tokens
// in valid JSON) turned into spaces, so that the event's data is one line.
// The event is never written to after this: the ID string shares its bytes.
func eventRecord[T string | []byte](id []byte, channel string, rest T) Record {
	return eventRecordIn(make([]byte, 0, eventRoom(len(id), len(channel)+2, len(rest))), id, channel, rest)
}

// eventRoom is the room eventRecord takes for an ID of idLen bytes, a
// channel of quotedLen bytes as a JSON string and members of restLen bytes.
func eventRoom(idLen, quotedLen, restLen int) int {
	return len(sseIDPrefix) + 2*idLen + len(sseDataPrefix) + len(`{"_event_id":"","_channel":,`) +
		quotedLen + restLen + len(sseEnd)
}

// quotedLen is the length of channel as a JSON string.
func quotedLen(channel string) int {
	var buf [128]byte
	return len(transform.AppendJSONString(buf[:0], channel))
}

// eventRecordIn is eventRecord building the event in ev, empty, in place
// when its capacity is eventRoom's; the event's capacity is cut to its
// length, so that nothing appended to it reaches past it.
func eventRecordIn[T string | []byte](ev, id []byte, channel string, rest T) Record {
	ev = append(ev, sseIDPrefix...)
	ev = append(ev, id...)
	idEnd := len(ev)
	ev = append(ev, sseDataPrefix...)
	start := len(ev)
	ev = append(ev, `{"_event_id":"`...)
	ev = append(ev, id...)
	ev = append(ev, `","_channel":`...)
	ev = transform.AppendJSONString(ev, channel)
	if len(rest) == 0 {
		ev = append(ev, '}')
	} else {
		ev = append(ev, ',')
		ev = append(ev, rest...)
	}
	oneLine(ev[start:])
	end := len(ev)
	ev = append(ev, sseEnd...)
	ev = ev[:len(ev):len(ev)]
	return Record{
		Channel: channel,
		ID:      unsafe.String(&ev[len(sseIDPrefix)], idEnd-len(sseIDPrefix)),
		SSE:     ev,
		JSON:    ev[start:end:end],
	}
}

// decimalCounter is a number kept as its decimal digits after a fixed
// prefix, counted up in place: the memory hub's event IDs, "<epoch>-<seq>",
// one after another, without formatting each.
type decimalCounter struct {
	text   []byte // the prefix, then the digits
	prefix int    // len of the prefix
}

// newDecimalCounter returns a counter at n, its digits after prefix.
func newDecimalCounter(prefix string, n uint64) decimalCounter {
	return decimalCounter{text: strconv.AppendUint([]byte(prefix), n, 10), prefix: len(prefix)}
}

// next counts one up and returns the text, valid until the next call.
func (c *decimalCounter) next() []byte {
	digits := c.text[c.prefix:]
	for i := len(digits) - 1; i >= 0; i-- {
		if digits[i] != '9' {
			digits[i]++
			return c.text
		}
		digits[i] = '0'
	}
	// It was all nines, now all zeros: a 1 before them.
	c.text = append(c.text, '0')
	c.text[c.prefix] = '1'
	return c.text
}

// members returns what follows the '{' of the object gelf, nil when it has
// no members (or is not an object).
func members(gelf []byte) []byte {
	rest, ok := objectBody(gelf)
	if !ok || isEmptyObjectBody(rest) {
		return nil
	}
	return rest
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
