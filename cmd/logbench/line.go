package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Message kinds the load generator sends.
const (
	kindHeaderless = "headerless" // Python SysLogHandler: <PRI>msg, NUL-terminated
	kindRFC3164    = "rfc3164"    // BSD syslog header, LF-terminated on TCP
	kindRFC5424    = "rfc5424"    // RFC 5424 with structured data, octet-counted on TCP
	kindMix        = "mix"        // the three above in turn
)

// kinds lists the single kinds a mix cycles through.
var kinds = []string{kindHeaderless, kindRFC3164, kindRFC5424}

// probeConn is the connection number of readiness probes: lines that tell
// a subscriber it is connected, never counted as load.
const probeConn = 0

// markPrefix starts the mark every load line carries in its message text:
// "lb r=<run> c=<conn> s=<seq> t=<unix ns>". Receivers find it with one
// bytes.Index and ignore lines of other runs.
const markPrefix = "lb r="

// lineBuilder appends complete, framed syslog lines of one kind for one
// connection. Everything that does not change per line is precomputed.
type lineBuilder struct {
	kind    string
	udp     bool
	head    []byte // syslog header up to and including the space before the mark
	mark    []byte // "lb r=<run> c=<conn> s="
	pad     []byte // " xxx…" so a line is about the requested size
	scratch []byte // RFC 5424 over TCP: the message before its octet count
}

// newLineBuilder prepares lines of kind for connection conn of run, padded
// so a whole line is about size bytes. The header timestamp is fixed at
// now: receivers measure latency from the mark, not from the header.
func newLineBuilder(kind string, udp bool, run string, conn int, size int, now time.Time) *lineBuilder {
	b := &lineBuilder{kind: kind, udp: udp}
	switch kind {
	case kindHeaderless:
		b.head = []byte("<14>logbench: ")
	case kindRFC3164:
		b.head = fmt.Appendf(nil, "<13>%s benchhost logbench[%d]: ", now.Format(time.Stamp), conn)
	case kindRFC5424:
		b.head = fmt.Appendf(nil, "<13>1 %s benchhost logbench %d lb [lb@32473 run=\"%s\" conn=\"%d\"] ",
			now.UTC().Format("2006-01-02T15:04:05.000000Z"), conn, run, conn)
	}
	b.mark = fmt.Appendf(nil, "%s%s c=%d s=", markPrefix, run, conn)
	// A typical line: header, mark, a 7-digit sequence, " t=" and 19 digits, framing.
	base := len(b.head) + len(b.mark) + 7 + 3 + 19 + 1
	if kind == kindRFC5424 && !udp {
		base += 4
	}
	if n := size - base - 1; n > 0 {
		b.pad = make([]byte, 0, n+1)
		b.pad = append(b.pad, ' ')
		for i := 0; i < n; i++ {
			b.pad = append(b.pad, byte('a'+i%26))
		}
	}
	return b
}

// appendLine appends one framed line with sequence seq sent at sentNanos.
func (b *lineBuilder) appendLine(dst []byte, seq uint64, sentNanos int64) []byte {
	if b.kind == kindRFC5424 && !b.udp {
		// Octet counting (RFC 6587 3.4.1): the length comes first.
		b.scratch = b.appendMessage(b.scratch[:0], seq, sentNanos)
		dst = strconv.AppendInt(dst, int64(len(b.scratch)), 10)
		dst = append(dst, ' ')
		return append(dst, b.scratch...)
	}
	dst = b.appendMessage(dst, seq, sentNanos)
	switch {
	case b.kind == kindHeaderless:
		dst = append(dst, 0) // Python appends NUL on TCP and UDP alike
	case !b.udp:
		dst = append(dst, '\n')
	}
	return dst
}

// appendMessage appends the syslog message without framing.
func (b *lineBuilder) appendMessage(dst []byte, seq uint64, sentNanos int64) []byte {
	dst = append(dst, b.head...)
	dst = append(dst, b.mark...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, " t="...)
	dst = strconv.AppendInt(dst, sentNanos, 10)
	return append(dst, b.pad...)
}

// mark is what a receiver reads back from one record.
type mark struct {
	conn int
	seq  uint64
	sent int64 // unix ns
}

// findMark looks for the mark of run (markPrefix+run+" c=") in data, which
// may be a whole GELF JSON object or SSE data line, and parses it. ok is
// false when data carries no mark of this run.
func findMark(data []byte, needle []byte) (m mark, ok bool) {
	i := bytes.Index(data, needle)
	if i < 0 {
		return mark{}, false
	}
	p := data[i+len(needle):]
	conn, p, ok := parseUint(p)
	if !ok || conn > 1<<20 || !hasPrefix(p, " s=") {
		return mark{}, false
	}
	seq, p, ok := parseUint(p[3:])
	if !ok || !hasPrefix(p, " t=") {
		return mark{}, false
	}
	sent, _, ok := parseUint(p[3:])
	if !ok || sent > 1<<62 {
		return mark{}, false
	}
	return mark{conn: int(conn), seq: seq, sent: int64(sent)}, true
}

// markNeedle is what findMark searches for in records of run.
func markNeedle(run string) []byte {
	return []byte(markPrefix + run + " c=")
}

// parseUint reads leading decimal digits of p (at most 19) and returns the
// value and the rest.
func parseUint(p []byte) (uint64, []byte, bool) {
	var v uint64
	n := 0
	for n < len(p) && n < 19 && p[n] >= '0' && p[n] <= '9' {
		v = v*10 + uint64(p[n]-'0')
		n++
	}
	return v, p[n:], n > 0
}

func hasPrefix(p []byte, s string) bool {
	return len(p) >= len(s) && string(p[:len(s)]) == s
}

// notice is a stream notice: records dropped for a slow subscriber, or a
// gap in a resumed history.
type notice struct {
	dropped uint64
	gap     bool
}

// parseNotice recognises the notices of the stream API, {"dropped":N} and
// {"gap":true}, as an SSE data line, an NDJSON line or a WebSocket frame.
func parseNotice(data []byte) (notice, bool) {
	data = bytes.TrimSpace(data)
	if v, ok := bytes.CutPrefix(data, []byte(`{"dropped":`)); ok {
		n, _, ok := parseUint(bytes.TrimLeft(v, " "))
		return notice{dropped: n}, ok
	}
	if bytes.HasPrefix(data, []byte(`{"gap":true`)) {
		return notice{gap: true}, true
	}
	return notice{}, false
}

// appPerConn renames the app of the lines "logbench-<conn>".
func (b *lineBuilder) appPerConn(conn int) {
	app := fmt.Appendf(nil, "logbench-%d", conn)
	i := bytes.Index(b.head, []byte("logbench"))
	if i < 0 {
		return
	}
	b.head = append(append(append([]byte(nil), b.head[:i]...), app...), b.head[i+len("logbench"):]...)
}
