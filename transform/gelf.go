package transform

import (
	"strconv"
)

// Encoder turns messages into GELF 1.1 JSON objects.
// TEMPORARY body, being replaced by the encoder work.
type Encoder struct {
	Hostname string // the daemon's own host name: the "host" field
	Group    string // the "_group" field
	Compat   bool   // emit only the original rsyslog template's five fields
}

// Append appends m as one GELF JSON object to dst. replaced reports whether
// invalid UTF-8 in m had to be replaced with U+FFFD.
func (e *Encoder) Append(dst []byte, m *Message) (out []byte, replaced bool) {
	dst = append(dst, `{"_app_name":`...)
	dst = strconv.AppendQuote(dst, m.Peer)
	dst = append(dst, `,"short_message":`...)
	dst = strconv.AppendQuote(dst, string(m.Text))
	dst = append(dst, '}')
	return dst, false
}
