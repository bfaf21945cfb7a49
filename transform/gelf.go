package transform

import (
	"bytes"
	"strconv"
	"time"
)

// Encoder turns messages into GELF 1.1 JSON objects. It is written by hand,
// append-style and without reflection, because it runs once per line; an
// Encoder holds no state of its own and is safe for concurrent use.
type Encoder struct {
	Hostname string // the daemon's own host name: the "host" field
	Group    string // the "_group" field
	Compat   bool   // emit only the original rsyslog template's five fields
}

// facilityNames are the syslog facility keywords, by facility code.
var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// facilityName returns the keyword of a syslog facility code ("kern",
// "user", ... "local7"), or its number for a code past 23.
func facilityName(f uint8) string {
	if int(f) < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(int(f))
}

// Append appends m as one GELF JSON object to dst. replaced reports whether
// invalid UTF-8 in m had to be replaced with U+FFFD.
//
// The object is always valid JSON in valid UTF-8, whatever m holds. Fields
// come in a fixed order: version, host, short_message, timestamp (reception
// time, seconds with milliseconds), level, _app_name (the sending host),
// _group, _facility, then, only when set, _app, _procid, _msgid, _hostname,
// _tls_peer (the CN of the sender's client certificate), _log_time, one
// _sd_<id>_<param> per structured-data parameter and _truncated. In compat mode it is exactly the rsyslog template's object:
// _app_name, host, short_message, timestamp (whole seconds), _group.
func (e *Encoder) Append(dst []byte, m *Message) (out []byte, replaced bool) {
	if e.Compat {
		return e.appendCompat(dst, m)
	}
	w := gelfWriter{buf: dst}
	w.raw(`{"version":"1.1","host":`)
	w.str(e.Hostname)
	w.raw(`,"short_message":`)
	w.text(m.Text)
	w.raw(`,"timestamp":`)
	w.buf = AppendUnixMilli(w.buf, m.Received)
	w.raw(`,"level":`)
	w.buf = append(w.buf, '0'+min(m.Severity, 7))
	w.raw(`,"_app_name":`)
	w.str(m.Peer)
	w.raw(`,"_group":`)
	w.str(e.Group)
	w.raw(`,"_facility":"`)
	w.raw(facilityName(m.Facility))
	w.buf = append(w.buf, '"')
	w.optional(`,"_app":`, m.AppName)
	w.optional(`,"_procid":`, m.ProcID)
	w.optional(`,"_msgid":`, m.MsgID)
	w.optional(`,"_hostname":`, m.Hostname)
	w.optional(`,"_tls_peer":`, m.TLSPeer)
	if !m.Timestamp.IsZero() {
		w.raw(`,"_log_time":"`)
		w.buf = m.Timestamp.AppendFormat(w.buf, time.RFC3339Nano)
		w.buf = append(w.buf, '"')
	}
	w.structuredData(m.StructuredData)
	if m.Truncated {
		w.raw(`,"_truncated":true`)
	}
	w.buf = append(w.buf, '}')
	return w.buf, w.replaced
}

// appendCompat writes the five fields of the proof of concept's rsyslog
// template, in its order, so consumers of the old records keep working.
func (e *Encoder) appendCompat(dst []byte, m *Message) ([]byte, bool) {
	w := gelfWriter{buf: dst}
	w.raw(`{"_app_name":`)
	w.str(m.Peer)
	w.raw(`,"host":`)
	w.str(e.Hostname)
	w.raw(`,"short_message":`)
	w.text(m.Text)
	w.raw(`,"timestamp":`)
	w.buf = strconv.AppendInt(w.buf, m.Received.Unix(), 10)
	w.raw(`,"_group":`)
	w.str(e.Group)
	w.buf = append(w.buf, '}')
	return w.buf, w.replaced
}

// gelfWriter accumulates one JSON object and whether any of its strings
// needed invalid UTF-8 replaced.
type gelfWriter struct {
	buf      []byte
	replaced bool
	sdNames  [16]nameSpan // names of the _sd_ fields written so far, to skip duplicates
	sdMore   []nameSpan   // the names past the first 16
}

// nameSpan is where a field name sits in gelfWriter.buf.
type nameSpan struct{ start, end int }

func (w *gelfWriter) raw(s string) { w.buf = append(w.buf, s...) }

func (w *gelfWriter) str(s string) {
	var r bool
	w.buf, r = appendString(w.buf, s)
	w.replaced = w.replaced || r
}

func (w *gelfWriter) text(b []byte) {
	var r bool
	w.buf, r = appendString(w.buf, b)
	w.replaced = w.replaced || r
}

// optional writes key and the string value s unless s is empty.
func (w *gelfWriter) optional(key, s string) {
	if s == "" {
		return
	}
	w.raw(key)
	w.str(s)
}

// structuredData writes one _sd_<id>_<param> field per parameter. IDs and
// names are cut to the characters GELF allows in field names; when two
// parameters end up with the same field name, the first one is kept so the
// object never holds a duplicate key.
func (w *gelfWriter) structuredData(sd []SDElement) {
	n := 0
	for _, el := range sd {
		for _, p := range el.Params {
			mark := len(w.buf)
			w.raw(`,"`)
			start := len(w.buf)
			w.raw("_sd_")
			w.buf = appendFieldName(w.buf, el.ID)
			w.buf = append(w.buf, '_')
			w.buf = appendFieldName(w.buf, p.Name)
			span := nameSpan{start, len(w.buf)}
			if w.seen(span, n) {
				w.buf = w.buf[:mark]
				continue
			}
			if n < len(w.sdNames) {
				w.sdNames[n] = span
			} else {
				w.sdMore = append(w.sdMore, span)
			}
			n++
			w.raw(`":`)
			w.str(p.Value)
		}
	}
}

// seen reports whether the name at span equals one of the first n names
// recorded by structuredData.
func (w *gelfWriter) seen(span nameSpan, n int) bool {
	name := w.buf[span.start:span.end]
	for k := range n {
		s := w.sdSpan(k)
		if bytes.Equal(w.buf[s.start:s.end], name) {
			return true
		}
	}
	return false
}

func (w *gelfWriter) sdSpan(k int) nameSpan {
	if k < len(w.sdNames) {
		return w.sdNames[k]
	}
	return w.sdMore[k-len(w.sdNames)]
}

// appendFieldName appends s with every byte GELF does not allow in a field
// name (outside [A-Za-z0-9_.-]) replaced by '_'.
func appendFieldName(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !fieldNameByte(c) {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

func fieldNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

// AppendUnixMilli appends t as seconds since the epoch with a three-digit
// millisecond fraction ("1732456123.456"), never in exponent form.
func AppendUnixMilli(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
