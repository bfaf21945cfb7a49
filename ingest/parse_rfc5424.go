package ingest

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/logviewer/logviewer/transform"
)

// RFC 5424 field limits (section 6).
const (
	maxHostnameLen = 255
	maxAppNameLen  = 48
	maxMsgIDLen    = 32
	maxSDNameLen   = 32
)

// parse5424 parses frame (PRI of length n, then "1 ") as RFC 5424 and
// reports whether it was one, and whether the machine had to be asked. The go-syslog machine is the authority; a
// hand-written parser takes the strict common form first, without the
// machine's maps and copies, and leaves everything else, and all it is not
// sure of, to the machine. Tests check that both agree. An error of the
// machine makes the frame header-less instead, which keeps all of its text.
func (p parser) parse5424(frame []byte, n int, m *transform.Message) (ok, library bool) {
	if !p.libraryOnly && fast5424(frame, n, m, p.zones) {
		return true, false
	}
	return library5424(frame, m), true
}

// span is a [start, end) range of the frame.
type span struct{ start, end int }

// fast5424 parses the strict common form of RFC 5424 and reports whether
// it could; m is changed only when it could. All header strings share one
// allocation.
func fast5424(frame []byte, n int, m *transform.Message, zones *zoneCache) bool {
	i := n + 2 // past "<PRI>1 "
	var ts time.Time
	if i < len(frame) && frame[i] == '-' {
		i++
	} else {
		var ok bool
		if ts, i, ok = parseRFC3339(frame, i, zones); !ok {
			return false
		}
	}
	if i >= len(frame) || frame[i] != ' ' {
		return false
	}
	i++
	hdrStart := i
	var fields [4]span // HOSTNAME, APP-NAME, PROCID, MSGID
	for k, limit := range [4]int{maxHostnameLen, maxAppNameLen, maxProcIDLen, maxMsgIDLen} {
		start := i
		stop := min(len(frame), start+limit+1)
		for i < stop && graph[frame[i]] {
			i++
		}
		if i == start || i-start > limit || i == len(frame) || frame[i] != ' ' {
			return false
		}
		fields[k] = span{start, i}
		i++
	}
	// Scan the structured data once to find where it ends, then again to
	// take its strings out of the one string made for the header.
	end, ok := scanSD(frame, i, nil, "", 0)
	if !ok || (end < len(frame) && frame[end] != ' ') { // MSG: nothing, or a space and anything
		return false
	}
	hdr := string(frame[hdrStart:end])
	field := func(s span) string {
		if v := hdr[s.start-hdrStart : s.end-hdrStart]; v != "-" {
			return v
		}
		return ""
	}
	sd := m.StructuredData[:0]
	scanSD(frame, i, &sd, hdr, hdrStart)
	if !sortSD(sd) {
		return false // duplicates: the machine decides
	}
	m.StructuredData = sd
	m.Format = transform.FormatRFC5424
	m.Timestamp = ts
	m.Hostname = field(fields[0])
	m.AppName = field(fields[1])
	m.ProcID = field(fields[2])
	m.MsgID = field(fields[3])
	if end < len(frame) {
		m.Text = trimBOM(frame[end+1:])
	} else {
		m.Text = frame[len(frame):]
	}
	return true
}

// scanSD reads STRUCTURED-DATA at frame[i:]: "-" or one or more
// [SD-ID *(SP PARAM-NAME="PARAM-VALUE")], and returns where it ends. It
// refuses what the machine would refuse or read differently: a backslash
// not before '"', '\' or ']', an unescaped ']', a value that is not UTF-8.
// With sd nil it only checks; else it appends the elements to *sd, their
// strings taken from hdr, which holds the frame from hdrStart on.
func scanSD(frame []byte, i int, sd *[]transform.SDElement, hdr string, hdrStart int) (end int, ok bool) {
	if i < len(frame) && frame[i] == '-' {
		return i + 1, true
	}
	if i >= len(frame) || frame[i] != '[' {
		return 0, false
	}
	sub := func(start, end int) string { return hdr[start-hdrStart : end-hdrStart] }
	for i < len(frame) && frame[i] == '[' {
		i++
		idStart := i
		i = scanSDName(frame, i)
		if i == idStart {
			return 0, false
		}
		var el *transform.SDElement
		if sd != nil {
			el = nextElement(sd)
			el.ID = sub(idStart, i)
		}
		for i < len(frame) && frame[i] == ' ' {
			i++
			nameStart := i
			i = scanSDName(frame, i)
			if i == nameStart || i+1 >= len(frame) || frame[i] != '=' || frame[i+1] != '"' {
				return 0, false
			}
			nameEnd := i
			i += 2
			valStart := i
			ascii, escaped := true, false
			for i < len(frame) && frame[i] != '"' {
				switch c := frame[i]; {
				case c == ']':
					return 0, false
				case c == '\\':
					if i+1 >= len(frame) || (frame[i+1] != '"' && frame[i+1] != '\\' && frame[i+1] != ']') {
						return 0, false
					}
					escaped = true
					i++
				case c >= utf8.RuneSelf:
					ascii = false
				}
				i++
			}
			if i >= len(frame) || (!ascii && !utf8.Valid(frame[valStart:i])) {
				return 0, false
			}
			if el != nil {
				v := sub(valStart, i)
				if escaped {
					v = unescapeSD(v)
				}
				el.Params = append(el.Params, transform.SDParam{Name: sub(nameStart, nameEnd), Value: v})
			}
			i++ // the closing quote
		}
		if i >= len(frame) || frame[i] != ']' {
			return 0, false
		}
		i++
	}
	return i, true
}

// scanSDName returns the end of the SD-NAME (an SD-ID or a PARAM-NAME) at
// i, or i when there is none or it is too long.
func scanSDName(frame []byte, i int) int {
	start := i
	for i < len(frame) && i-start <= maxSDNameLen {
		c := frame[i]
		if !isGraph(c) || c == '=' || c == ']' || c == '"' {
			break
		}
		i++
	}
	if i-start > maxSDNameLen {
		return start
	}
	return i
}

// unescapeSD removes the backslash of each \" \\ and \] of a PARAM-VALUE.
func unescapeSD(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// sortSD sorts elements by SD-ID and parameters by name, the order
// library5424 gives the machine's maps. It reports false when an SD-ID or a
// parameter name of one element occurs twice: the machine refuses the
// first and keeps the last value of the second, so it decides those.
func sortSD(sd []transform.SDElement) bool {
	slices.SortFunc(sd, func(a, b transform.SDElement) int { return strings.Compare(a.ID, b.ID) })
	for i := range sd {
		if i > 0 && sd[i].ID == sd[i-1].ID {
			return false
		}
		ps := sd[i].Params
		slices.SortFunc(ps, func(a, b transform.SDParam) int { return strings.Compare(a.Name, b.Name) })
		for k := 1; k < len(ps); k++ {
			if ps[k].Name == ps[k-1].Name {
				return false
			}
		}
	}
	return true
}

// nextElement extends sd by one element, reusing the parameter slice an
// earlier message left there.
func nextElement(sd *[]transform.SDElement) *transform.SDElement {
	s := *sd
	if len(s) < cap(s) {
		s = s[:len(s)+1]
		s[len(s)-1].Params = s[len(s)-1].Params[:0]
	} else {
		s = append(s, transform.SDElement{})
	}
	*sd = s
	return &s[len(s)-1]
}

// library5424 parses frame with the go-syslog RFC 5424 machine.
func library5424(frame []byte, m *transform.Message) bool {
	res, err := rfc5424.NewMachine().Parse(frame)
	if err != nil || res == nil {
		return false
	}
	x, ok := res.(*rfc5424.SyslogMessage)
	if !ok || x.Version != 1 {
		return false
	}
	m.Format = transform.FormatRFC5424
	m.Timestamp = time.Time{}
	if x.Timestamp != nil {
		m.Timestamp = *x.Timestamp
	}
	m.Hostname = deref(x.Hostname)
	m.AppName = deref(x.Appname)
	m.ProcID = deref(x.ProcID)
	m.MsgID = deref(x.MsgID)
	m.StructuredData = m.StructuredData[:0]
	if x.StructuredData != nil {
		m.StructuredData = appendSD(m.StructuredData, *x.StructuredData)
	}
	m.Text = trimBOM(tailOf(frame, deref(x.Message)))
	return true
}

// appendSD appends the structured data the machine returns as maps, with
// element IDs and parameter names sorted so the output is deterministic.
func appendSD(sd []transform.SDElement, data map[string]map[string]string) []transform.SDElement {
	ids := make([]string, 0, 8)
	for id := range data {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	names := make([]string, 0, 8)
	for _, id := range ids {
		el := nextElement(&sd)
		el.ID = id
		params := data[id]
		names = names[:0]
		for name := range params {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			el.Params = append(el.Params, transform.SDParam{Name: name, Value: params[name]})
		}
	}
	return sd
}

// tailOf returns the end of frame that holds msg, which the machine copies
// out of it, so that the text aliases the frame.
func tailOf(frame []byte, msg string) []byte {
	if len(msg) <= len(frame) && string(frame[len(frame)-len(msg):]) == msg {
		return frame[len(frame)-len(msg):]
	}
	return []byte(msg)
}

// isGraph reports whether c is a visible US-ASCII character (PRINTUSASCII).
func isGraph(c byte) bool { return '!' <= c && c <= '~' }

// graph is isGraph as a table.
var graph = func() (t [256]bool) {
	for c := range t {
		t[c] = isGraph(byte(c))
	}
	return t
}()
