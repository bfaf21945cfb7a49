package ingest

import "github.com/logviewer/logviewer/transform"

// Parse fills m from one syslog frame: RFC 5424, else RFC 3164, else the
// header-less <PRI>text form, else raw text as user.notice. It never fails.
// It sets every field but Received, Peer, Transport and Truncated.
// TEMPORARY body, being replaced by the parser work.
func Parse(frame []byte, m *transform.Message) {
	m.Format = transform.FormatRaw
	m.Facility, m.Severity = 1, 5
	m.Text = frame
}
