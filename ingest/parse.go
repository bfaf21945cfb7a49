package ingest

import (
	"time"

	"github.com/logviewer/logviewer/transform"
)

const (
	// Messages without a PRI are user.notice, as rsyslog files them.
	rawFacility = 1
	rawSeverity = 5

	// maxPRI is the largest valid PRI: facility 23 (local7), severity 7.
	maxPRI = 191
	// maxTagLen bounds a header-less "tag:" so that a long first word
	// followed by a colon is kept as text (RFC 5424 APP-NAME is at most 48).
	maxTagLen = 48
	// maxProcIDLen bounds the "[pid]" of a tag (RFC 5424 PROCID is at most 128).
	maxProcIDLen = 128
)

// utf8BOM may start the MSG of RFC 5424 (and of older Python senders).
const utf8BOM = "\xEF\xBB\xBF"

// Parse fills m from one syslog frame: RFC 5424, else RFC 3164, else the
// header-less <PRI>text form, else raw text as user.notice. It never fails.
// It sets every field but Received, Peer, Transport and Truncated.
//
// m.Text aliases frame. Trailing CR, LF and NUL and a UTF-8 BOM at the start
// of the MSG are removed. RFC 3164 timestamps carry no year and are taken to
// be of the current year, in UTC. A header-less "tag: text" or
// "tag[pid]: text" gives AppName and ProcID. The go-syslog machines decide
// what is RFC 5424 and RFC 3164; strict common headers are read by faster
// hand-written code that tests hold to the same results; library reports
// whether a frame needed a machine (a rare or odd form).
func Parse(frame []byte, m *transform.Message) (library bool) {
	return parse(frame, m, time.Now)
}

// ParseReceived is Parse for a frame received at received, which dates
// RFC 3164 timestamps (they have no year) without reading the clock again.
func ParseReceived(frame []byte, m *transform.Message, received time.Time) (library bool) {
	return parser{now: time.Now, at: received}.parse(frame, m)
}

// parse is Parse with the clock that dates RFC 3164 timestamps injected.
func parse(frame []byte, m *transform.Message, now func() time.Time) (library bool) {
	return parser{now: now}.parse(frame, m)
}

// parser holds what one parse depends on besides the frame.
type parser struct {
	now func() time.Time // dates RFC 3164 timestamps, which have no year
	at  time.Time        // when set, used instead of now
	// libraryOnly turns off the hand-written fast paths, so that tests can
	// check them against the go-syslog machines they stand in for.
	libraryOnly bool
	// header, when set, holds the header strings (host, tag, pid) of the
	// sender's line before: a line with the same header reuses them, as
	// most lines of one connection do, instead of allocating its own.
	header *string
	// zones, when set, shares the zone of the sender's last timestamp
	// offset with the next timestamp of the same offset.
	zones *zoneCache
}

// year returns the year that RFC 3164 timestamps are put in, in UTC.
func (p parser) year() int {
	if !p.at.IsZero() {
		return yearUTC(p.at)
	}
	return yearUTC(p.now())
}

// parse fills m and reports whether a go-syslog machine was used.
func (p parser) parse(frame []byte, m *transform.Message) (library bool) {
	m.Timestamp = time.Time{}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = "", "", "", ""
	m.StructuredData = m.StructuredData[:0]

	frame = trimTrailer(frame)
	pri, n, ok := parsePRI(frame)
	if !ok {
		m.Format = transform.FormatRaw
		m.Facility, m.Severity = rawFacility, rawSeverity
		m.Text = trimBOM(frame)
		return false
	}
	m.Facility, m.Severity = pri/8, pri%8
	rest := frame[n:]
	// Cheap checks first, so that the common header-less lines never pay
	// for a failed attempt at RFC 5424 or RFC 3164.
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		ok, lib := p.parse5424(frame, n, m)
		if ok {
			return lib
		}
		library = lib
	}
	if looks3164(rest) {
		ok, lib := p.parse3164(frame, n, m)
		if ok {
			return library || lib
		}
		library = library || lib
	}
	m.Format = transform.FormatHeaderless
	p.setHeader(frame, span{}, n, m)
	return library
}

// parsePRI reads "<PRI>" at the start of frame: one to three digits without
// leading zeros, at most 191. n is the length of the PRI part.
func parsePRI(frame []byte) (pri uint8, n int, ok bool) {
	if len(frame) < 3 || frame[0] != '<' {
		return 0, 0, false
	}
	v := 0
	i := 1
	for ; i < len(frame) && i <= 4; i++ {
		c := frame[i]
		if c == '>' {
			break
		}
		if c < '0' || c > '9' || (i == 2 && frame[1] == '0') {
			return 0, 0, false
		}
		v = v*10 + int(c-'0')
	}
	if i == 1 || i > 4 || i == len(frame) || frame[i] != '>' || v > maxPRI {
		return 0, 0, false
	}
	return uint8(v), i + 1, true
}

// setHeader reads "tag: text" or "tag[pid]: text" at frame[from:] into
// AppName, ProcID and Text; anything else is text as it is. host, when not
// empty, is the span of the HOSTNAME. A UTF-8 BOM before the tag or the
// text is dropped. The header strings share one allocation, or none when
// they are those of p.header.
func (p parser) setHeader(frame []byte, host span, from int, m *transform.Message) {
	s := trimBOM(frame[from:])
	from = len(frame) - len(s)
	tag, pid, text, ok := splitTag(s)
	hasHost := host.end > host.start
	if !ok {
		if hasHost {
			m.Hostname = string(frame[host.start:host.end])
		}
		m.Text = s
		return
	}
	start, end := from, from+len(tag)
	if hasHost {
		start = host.start
	}
	if len(pid) > 0 {
		end += 1 + len(pid)
	}
	hdr := p.headerString(frame[start:end])
	if hasHost {
		m.Hostname = hdr[:host.end-start]
	}
	m.AppName = hdr[from-start : from-start+len(tag)]
	if len(pid) > 0 {
		m.ProcID = hdr[from-start+len(tag)+1:]
	}
	m.Text = trimBOM(text)
}

// headerString returns b as a string: that of p.header when it holds the
// same bytes, else a new one, kept in p.header for the next line.
func (p parser) headerString(b []byte) string {
	if p.header == nil {
		return string(b)
	}
	if *p.header != string(b) {
		*p.header = string(b)
	}
	return *p.header
}

// splitTag splits "tag: text" and "tag[pid]: text" (also with nothing after
// the colon). A tag is 1 to maxTagLen bytes, none of them a space, a
// control character, ':' or '['; a pid is 1 to maxProcIDLen bytes, none of
// them a space, a control character or ']'.
func splitTag(s []byte) (tag, pid, text []byte, ok bool) {
	i := 0
	limit := min(len(s), maxTagLen+1)
	for i < limit && tagClass[s[i]] == tagPlain {
		i++
	}
	if i == 0 || i == limit || tagClass[s[i]] == tagInvalid {
		return nil, nil, nil, false // empty, too long, cut short or a bad byte
	}
	tag = s[:i]
	if s[i] == '[' {
		j := i + 1
		for j < len(s) && j-i <= maxProcIDLen && s[j] != ']' {
			if !tagByte(s[j]) {
				return nil, nil, nil, false
			}
			j++
		}
		if j == i+1 || j == len(s) || s[j] != ']' {
			return nil, nil, nil, false
		}
		pid = s[i+1 : j]
		i = j + 1
	}
	if i == len(s) || s[i] != ':' {
		return nil, nil, nil, false
	}
	i++
	if i < len(s) {
		if s[i] != ' ' {
			return nil, nil, nil, false
		}
		i++
	}
	return tag, pid, s[i:], true
}

// Classes of the bytes of a tag, for splitTag.
const (
	tagPlain   = iota // part of a tag
	tagEnd            // ':' or '[', which end it
	tagInvalid        // a space, a control character: no tag
)

// tagClass classifies every byte for splitTag.
var tagClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == ':' || c == '[':
			t[c] = tagEnd
		case !tagByte(byte(c)):
			t[c] = tagInvalid
		}
	}
	return t
}()

func tagByte(c byte) bool { return c > ' ' && c != 0x7f }

// trimTrailer removes the CR, LF and NUL that end a frame.
func trimTrailer(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\r', '\n', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

func trimBOM(b []byte) []byte {
	if len(b) >= len(utf8BOM) && string(b[:len(utf8BOM)]) == utf8BOM {
		return b[len(utf8BOM):]
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
