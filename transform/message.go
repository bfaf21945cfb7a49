// Package transform turns parsed syslog messages into GELF JSON records and
// names the channel each record is published to. It knows no sockets.
package transform

import "time"

// Format says which syslog grammar a message was parsed with.
type Format uint8

// Formats recognised by the ingest parser, in the order it tries them.
const (
	FormatRFC5424    Format = iota + 1 // <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
	FormatRFC3164                      // <PRI>Mmm dd hh:mm:ss HOST TAG: MSG
	FormatHeaderless                   // <PRI>[tag[pid]: ]text, as Python's SysLogHandler sends
	FormatRaw                          // no PRI at all: kept whole as user.notice
)

// String names the format for logs and metrics labels.
func (f Format) String() string {
	switch f {
	case FormatRFC5424:
		return "rfc5424"
	case FormatRFC3164:
		return "rfc3164"
	case FormatHeaderless:
		return "headerless"
	case FormatRaw:
		return "raw"
	}
	return "unknown"
}

// SDParam is one PARAM-NAME="PARAM-VALUE" pair of an RFC 5424 SD-ELEMENT.
type SDParam struct {
	Name  string
	Value string
}

// SDElement is one RFC 5424 structured-data element, parameters in wire order.
type SDElement struct {
	ID     string
	Params []SDParam
}

// Message is one syslog message after framing and parsing. String fields are
// empty when the header did not carry them (RFC 5424 NILVALUE "-" included).
type Message struct {
	Received  time.Time // reception time (the template's timegenerated)
	Peer      string    // sending host: reverse DNS of the peer, else its address (fromhost)
	Transport string    // "tcp", "tls" or "udp"
	TLSPeer   string    // subject CN of the sender's verified client certificate; empty without one

	Format   Format
	Facility uint8 // 0..23
	Severity uint8 // 0..7

	Timestamp      time.Time // header timestamp; zero when absent
	Hostname       string    // HOSTNAME from the header
	AppName        string    // APP-NAME (5424) or TAG (3164, header-less)
	ProcID         string
	MsgID          string
	StructuredData []SDElement

	Text      []byte // MSG: BOM and trailing CR/LF/NUL removed; may hold invalid UTF-8
	Truncated bool   // the frame was longer than the maximum message size and was cut
}

// Reset clears m for reuse, keeping the capacity of its slices.
func (m *Message) Reset() {
	sd := m.StructuredData[:0]
	*m = Message{StructuredData: sd}
}
