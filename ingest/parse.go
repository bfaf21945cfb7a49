package ingest

import (
	"bytes"
	"slices"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

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
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// rfc3164Options configure the RFC 3164 machine. No year is given: the
// Stamp is parsed in year 0 and placed in the current year by parse3164, so
// that the clock can be injected in tests. The options hold no state.
var rfc3164Options = []syslog.MachineOption{
	rfc3164.WithBestEffort(),      // a timestamp is enough; the rest is re-read here
	rfc3164.WithRFC3339(),         // "<PRI>2026-11-24T12:00:00Z host tag: msg"
	rfc3164.WithSecondFractions(), // "Nov 24 12:00:00.123"
	rfc3164.WithEmbeddedNewlines(),
}

// Parse fills m from one syslog frame: RFC 5424, else RFC 3164, else the
// header-less <PRI>text form, else raw text as user.notice. It never fails.
// It sets every field but Received, Peer, Transport and Truncated.
//
// m.Text aliases frame. Trailing CR, LF and NUL and a UTF-8 BOM at the start
// of the MSG are removed. RFC 3164 timestamps carry no year and are taken to
// be of the current year, in UTC.
func Parse(frame []byte, m *transform.Message) {
	parse(frame, m, time.Now)
}

// parse is Parse with the clock that dates RFC 3164 timestamps injected.
func parse(frame []byte, m *transform.Message, now func() time.Time) {
	m.Timestamp = time.Time{}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = "", "", "", ""
	m.StructuredData = m.StructuredData[:0]

	frame = trimTrailer(frame)
	pri, n, ok := parsePRI(frame)
	if !ok {
		m.Format = transform.FormatRaw
		m.Facility, m.Severity = rawFacility, rawSeverity
		m.Text = trimBOM(frame)
		return
	}
	m.Facility, m.Severity = pri/8, pri%8
	rest := frame[n:]
	// Cheap checks first, so that the common header-less lines never pay
	// for a failed run of the RFC 5424 or RFC 3164 machine.
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' && parse5424(frame, m) {
		return
	}
	if looks3164(rest) && parse3164(frame, n, m, now) {
		return
	}
	m.Format = transform.FormatHeaderless
	parseTagged(rest, m)
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

// parse5424 parses frame as RFC 5424 and reports whether it was one. Any
// error of the machine makes the frame header-less instead, which keeps all
// of its text.
func parse5424(frame []byte, m *transform.Message) bool {
	res, err := rfc5424.NewMachine().Parse(frame)
	if err != nil || res == nil {
		return false
	}
	x, ok := res.(*rfc5424.SyslogMessage)
	if !ok || x.Version != 1 {
		return false
	}
	m.Format = transform.FormatRFC5424
	if x.Timestamp != nil {
		m.Timestamp = *x.Timestamp
	}
	m.Hostname = deref(x.Hostname)
	m.AppName = deref(x.Appname)
	m.ProcID = deref(x.ProcID)
	m.MsgID = deref(x.MsgID)
	if x.StructuredData != nil {
		m.StructuredData = appendSD(m.StructuredData, *x.StructuredData)
	}
	m.Text = trimBOM(tailOf(frame, deref(x.Message)))
	return true
}

// appendSD appends the structured data the machine returns as maps, with
// element IDs and parameter names sorted so the output is deterministic, and
// reuses the capacity left in sd by earlier messages.
func appendSD(sd []transform.SDElement, data map[string]map[string]string) []transform.SDElement {
	ids := make([]string, 0, 8)
	for id := range data {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	names := make([]string, 0, 8)
	for _, id := range ids {
		var el *transform.SDElement
		if len(sd) < cap(sd) {
			sd = sd[:len(sd)+1]
			el = &sd[len(sd)-1]
			el.Params = el.Params[:0]
		} else {
			sd = append(sd, transform.SDElement{})
			el = &sd[len(sd)-1]
		}
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

// looks3164 reports whether rest (what follows the PRI) starts like an RFC
// 3164 timestamp: a month name and a space ("Nov 24 12:00:00") or a year and
// a dash (RFC 3339).
func looks3164(rest []byte) bool {
	if len(rest) < 5 {
		return false
	}
	if rest[3] == ' ' && monthIndex(rest[:3]) >= 0 {
		return true
	}
	return isDigit(rest[0]) && isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[3]) && rest[4] == '-'
}

const monthNames = "JanFebMarAprMayJunJulAugSepOctNovDec"

func monthIndex(b []byte) int {
	for i := 0; i < len(monthNames); i += 3 {
		if string(b) == monthNames[i:i+3] {
			return i / 3
		}
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parse3164 parses frame (PRI of length n) as RFC 3164 and reports whether
// it was one, which takes a timestamp the machine accepts. The machine
// decides the timestamp and whether a HOSTNAME follows it; the tag and the
// message are read here, the same way as for header-less messages, because
// the machine's MSG drops text in some cases (a message of control
// characters, "tag:" with no space after it).
func parse3164(frame []byte, n int, m *transform.Message, now func() time.Time) bool {
	end := stampEnd(frame[n:])
	if end < 0 {
		return false
	}
	res, _ := rfc3164.NewMachine(rfc3164Options...).Parse(frame)
	x, ok := res.(*rfc3164.SyslogMessage)
	if !ok || x == nil || x.Timestamp == nil {
		return false
	}
	m.Format = transform.FormatRFC3164
	ts := *x.Timestamp
	if isDigit(frame[n]) {
		m.Timestamp = ts // RFC 3339: it has its year and zone
	} else {
		m.Timestamp = time.Date(now().UTC().Year(), ts.Month(), ts.Day(),
			ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), time.UTC)
	}
	rest := frame[n+end:]
	if len(rest) > 0 {
		rest = rest[1:] // the space after the timestamp
	}
	if x.Hostname != nil {
		if h := *x.Hostname; bytes.HasPrefix(rest, []byte(h)) && (len(rest) == len(h) || rest[len(h)] == ' ') {
			m.Hostname = h
			rest = rest[min(len(h)+1, len(rest)):]
		}
	}
	parseTagged(rest, m)
	// The machine has already copied the tag into strings: reuse them.
	if x.Appname != nil && *x.Appname == m.AppName {
		m.AppName = *x.Appname
	}
	if x.ProcID != nil && *x.ProcID == m.ProcID {
		m.ProcID = *x.ProcID
	}
	return true
}

// stampEnd returns the length of the timestamp that starts rest, or -1 when
// rest does not start with one: "Mmm dd hh:mm:ss[.frac]" (the day maybe
// space-padded) or an RFC 3339 token. Only the shape is checked here; the
// machine checks the values.
func stampEnd(rest []byte) int {
	if isDigit(rest[0]) {
		if i := bytes.IndexByte(rest, ' '); i >= 0 {
			return i
		}
		return len(rest)
	}
	i := 3
	for i < len(rest) && i < 5 && rest[i] == ' ' {
		i++
	}
	d := i
	for i < len(rest) && i-d < 2 && isDigit(rest[i]) {
		i++
	}
	if i == d || i+9 > len(rest) || rest[i] != ' ' {
		return -1
	}
	t := rest[i+1:]
	if !isDigit(t[0]) || !isDigit(t[1]) || t[2] != ':' || !isDigit(t[3]) || !isDigit(t[4]) ||
		t[5] != ':' || !isDigit(t[6]) || !isDigit(t[7]) {
		return -1
	}
	i += 9
	if i < len(rest) && rest[i] == '.' {
		i++
		f := i
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		if i == f {
			return -1
		}
	}
	if i < len(rest) && rest[i] != ' ' {
		return -1
	}
	return i
}

// parseTagged reads "tag: text" or "tag[pid]: text" into AppName, ProcID
// and Text; anything else is text as it is. A UTF-8 BOM before the tag or
// the text is dropped.
func parseTagged(s []byte, m *transform.Message) {
	s = trimBOM(s)
	tag, pid, text, ok := splitTag(s)
	if !ok {
		m.Text = s
		return
	}
	m.AppName = string(tag)
	if len(pid) > 0 {
		m.ProcID = string(pid)
	}
	m.Text = trimBOM(text)
}

// splitTag splits "tag: text" and "tag[pid]: text" (also with nothing after
// the colon). A tag is 1 to maxTagLen bytes, none of them a space, a
// control character, ':' or '['; a pid is 1 to maxProcIDLen bytes, none of
// them a space, a control character or ']'.
func splitTag(s []byte) (tag, pid, text []byte, ok bool) {
	i := 0
	for i < len(s) && i <= maxTagLen && s[i] != ':' && s[i] != '[' {
		if !tagByte(s[i]) {
			return nil, nil, nil, false
		}
		i++
	}
	if i == 0 || i > maxTagLen || i == len(s) {
		return nil, nil, nil, false
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
	if bytes.HasPrefix(b, utf8BOM) {
		return b[len(utf8BOM):]
	}
	return b
}

// tailOf returns the end of frame holding msg, which the RFC 5424 machine
// copies out of it, so that the text aliases the frame.
func tailOf(frame []byte, msg string) []byte {
	if len(msg) <= len(frame) && string(frame[len(frame)-len(msg):]) == msg {
		return frame[len(frame)-len(msg):]
	}
	return []byte(msg)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
