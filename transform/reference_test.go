package transform

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// This file keeps the straightforward encoder that the optimised one
// replaced, as the reference the fuzz tests hold it to byte for byte.

// refAppend is Encoder.Append as first written.
func refAppend(e *Encoder, dst []byte, m *Message) ([]byte, bool) {
	w := refWriter{buf: dst}
	if e.Compat {
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
	w.raw(`{"version":"1.1","host":`)
	w.str(e.Hostname)
	w.raw(`,"short_message":`)
	w.text(m.Text)
	w.raw(`,"timestamp":`)
	w.buf = refAppendUnixMilli(w.buf, m.Received)
	w.raw(`,"level":`)
	w.buf = append(w.buf, '0'+min(m.Severity, 7))
	w.raw(`,"_app_name":`)
	w.str(m.Peer)
	w.raw(`,"_group":`)
	w.str(e.Group)
	w.raw(`,"_facility":"`)
	if int(m.Facility) < len(facilityNames) {
		w.raw(facilityNames[m.Facility])
	} else {
		w.raw(strconv.Itoa(int(m.Facility)))
	}
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
	var names [][]byte
	for _, el := range m.StructuredData {
		for _, p := range el.Params {
			var name []byte
			name = append(name, "_sd_"...)
			name = refFieldName(name, el.ID)
			name = append(name, '_')
			name = refFieldName(name, p.Name)
			dup := false
			for _, n := range names {
				dup = dup || bytes.Equal(n, name)
			}
			if dup {
				continue
			}
			names = append(names, name)
			w.raw(`,"`)
			w.buf = append(w.buf, name...)
			w.raw(`":`)
			w.str(p.Value)
		}
	}
	if m.Truncated {
		w.raw(`,"_truncated":true`)
	}
	w.buf = append(w.buf, '}')
	return w.buf, w.replaced
}

type refWriter struct {
	buf      []byte
	replaced bool
}

func (w *refWriter) raw(s string) { w.buf = append(w.buf, s...) }

func (w *refWriter) str(s string) {
	var r bool
	w.buf, r = refAppendString(w.buf, s)
	w.replaced = w.replaced || r
}

func (w *refWriter) text(b []byte) {
	var r bool
	w.buf, r = refAppendString(w.buf, string(b))
	w.replaced = w.replaced || r
}

func (w *refWriter) optional(key, s string) {
	if s != "" {
		w.raw(key)
		w.str(s)
	}
}

func refFieldName(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '-') {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

func refAppendUnixMilli(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// refAppendString quotes s one rune at a time with unicode/utf8.
func refAppendString(dst []byte, s string) ([]byte, bool) {
	replaced := false
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\uFFFD"...)
			replaced = true
		case r == '"':
			dst = append(dst, `\"`...)
		case r == '\\':
			dst = append(dst, `\\`...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			dst = append(dst, `\u`...)
			dst = append(dst, "0123456789abcdef"[r>>12&0xf], "0123456789abcdef"[r>>8&0xf],
				"0123456789abcdef"[r>>4&0xf], "0123456789abcdef"[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"'), replaced
}
