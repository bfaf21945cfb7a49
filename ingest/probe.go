package ingest

import (
	"bytes"

	"github.com/logviewer/logviewer/internal/metrics"
)

// httpStarts are the first bytes of HTTP/1.x request lines (and of the
// HTTP/2 preface) that no syslog sender writes: a method, a space and the
// start of a request target.
var httpStarts = [...][]byte{
	[]byte("GET /"), []byte("POST /"), []byte("HEAD /"), []byte("PUT /"), []byte("DELETE /"),
	[]byte("PATCH /"), []byte("TRACE /"), []byte("OPTIONS /"), []byte("OPTIONS *"), []byte("CONNECT "),
	[]byte("PRI * HTTP/2"),
}

// Outcomes of classify besides a reject reason.
const (
	probeSyslog   = ""  // not TLS or HTTP: frame it
	probeNeedMore = "?" // a prefix of TLS or HTTP: read on
)

// probe reads the first bytes of a plain TCP connection into fr's buffer,
// no more than it needs, and returns metrics.RejectTLS or
// metrics.RejectHTTP when they begin a TLS ClientHello or an HTTP request,
// or "" for anything else. The bytes stay in fr for Next. A syslog frame
// ('<' or a digit first) is told by its first byte; only a prefix of a TLS
// record or an HTTP request line waits for more, and the end of the input
// or a read error ends the wait (the error is Next's to return).
func probe(fr *Framer) string {
	for {
		switch reason := classify(fr.buf[fr.start:fr.end]); reason {
		case probeNeedMore:
			if !fr.fill() {
				return probeSyslog
			}
		default:
			return reason
		}
	}
}

// classify tells what the first bytes b of a connection are.
func classify(b []byte) string {
	if len(b) == 0 {
		return probeNeedMore
	}
	switch c := b[0]; {
	case c == '<' || c >= '0' && c <= '9':
		return probeSyslog // the common case, at once
	case c == 0x16: // TLS record of type handshake, then version major 3
		if len(b) < 2 {
			return probeNeedMore
		}
		if b[1] == 0x03 {
			return metrics.RejectTLS
		}
		return probeSyslog
	case c < 'A' || c > 'Z':
		return probeSyslog
	}
	more := false
	for _, m := range httpStarts {
		if bytes.HasPrefix(b, m) {
			return metrics.RejectHTTP
		}
		if len(b) < len(m) && bytes.HasPrefix(m, b) {
			more = true
		}
	}
	if more {
		return probeNeedMore
	}
	return probeSyslog
}
