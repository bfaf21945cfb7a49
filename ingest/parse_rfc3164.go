package ingest

import (
	"bytes"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"

	"github.com/logviewer/logviewer/transform"
)

// rfc3164Options configure the RFC 3164 machine. No year is given: a Stamp
// is parsed in year 0 (a leap year, so Feb 29 passes) and put in the
// current year by parse3164, whose clock tests can set. The options hold no
// state.
var rfc3164Options = []syslog.MachineOption{
	rfc3164.WithBestEffort(),      // a timestamp is enough; the rest is read here
	rfc3164.WithRFC3339(),         // "<PRI>2026-11-24T12:00:00Z host tag: msg"
	rfc3164.WithSecondFractions(), // "Nov 24 12:00:00.123"
	rfc3164.WithEmbeddedNewlines(),
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

// monthIndex returns 0 for "Jan" ... 11 for "Dec", else -1.
func monthIndex(b []byte) int {
	if len(b) != 3 {
		return -1
	}
	const (
		jan = 'J'<<16 | 'a'<<8 | 'n'
		feb = 'F'<<16 | 'e'<<8 | 'b'
		mar = 'M'<<16 | 'a'<<8 | 'r'
		apr = 'A'<<16 | 'p'<<8 | 'r'
		may = 'M'<<16 | 'a'<<8 | 'y'
		jun = 'J'<<16 | 'u'<<8 | 'n'
		jul = 'J'<<16 | 'u'<<8 | 'l'
		aug = 'A'<<16 | 'u'<<8 | 'g'
		sep = 'S'<<16 | 'e'<<8 | 'p'
		oct = 'O'<<16 | 'c'<<8 | 't'
		nov = 'N'<<16 | 'o'<<8 | 'v'
		dec = 'D'<<16 | 'e'<<8 | 'c'
	)
	switch uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) {
	case jan:
		return 0
	case feb:
		return 1
	case mar:
		return 2
	case apr:
		return 3
	case may:
		return 4
	case jun:
		return 5
	case jul:
		return 6
	case aug:
		return 7
	case sep:
		return 8
	case oct:
		return 9
	case nov:
		return 10
	case dec:
		return 11
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parse3164 parses frame (PRI of length n) as RFC 3164 and reports whether
// it was one, which takes a timestamp the go-syslog machine accepts, then a
// space. The machine is the authority on timestamps; a hand-written parser
// takes the strict common forms first and leaves the rest to it (tests
// check that both agree). What follows the timestamp is read here: a
// HOSTNAME when the first word has no ':' and a space follows it (as the
// machine's grammar has it), then the tag and the message the same way as
// for header-less messages, because the machine's MSG drops text in some
// cases (a message of control characters, "tag:" with no space after it).
func (p parser) parse3164(frame []byte, n int, m *transform.Message) (ok, library bool) {
	rest := frame[n:]
	var ts time.Time
	var end int
	if !p.libraryOnly {
		ts, end, ok = p.readStamp(rest)
	}
	if !ok {
		library = true
		if ts, end, ok = libraryStamp(frame, n); !ok {
			return false, true
		}
		if !isDigit(rest[0]) { // a Stamp, in year 0: put it in the current year
			ts = time.Date(p.year(), ts.Month(), ts.Day(),
				ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), time.UTC)
		}
	}
	m.Format = transform.FormatRFC3164
	m.Timestamp = ts

	i := n + end
	for i < len(frame) && frame[i] == ' ' {
		i++
	}
	var host span
	h := i
	for h < len(frame) && h-i <= maxHostnameLen && hostByte[frame[h]] {
		h++
	}
	if h > i && h-i <= maxHostnameLen && h < len(frame) && frame[h] == ' ' {
		host = span{i, h}
		for i = h; i < len(frame) && frame[i] == ' '; i++ {
		}
	}
	p.setHeader(frame, host, i, m)
	return true, library
}

// hostByte marks the bytes of an RFC 3164 HOSTNAME as parse3164 reads it:
// visible US-ASCII but ':'.
var hostByte = func() (t [256]bool) {
	for c := range t {
		t[c] = isGraph(byte(c)) && c != ':'
	}
	return t
}()

// readStamp reads the timestamp at the start of rest as the machine would,
// and where it ends, when it is in one of the strict common forms followed
// by a space: "Mmm dd hh:mm:ss[.ffffff]" (day space-padded), put in the
// current year in UTC, or RFC 3339.
func (p parser) readStamp(rest []byte) (t time.Time, end int, ok bool) {
	if isDigit(rest[0]) {
		t, end, ok = parseRFC3339(rest, 0, p.zones)
	} else {
		var c clock
		if c, end, ok = parseStamp(rest); ok {
			t = dateUTC(p.year(), c)
		}
	}
	if !ok || end >= len(rest) || rest[end] != ' ' {
		return time.Time{}, 0, false
	}
	return t, end, true
}

// clock is the month, day and time of day of a Stamp.
type clock struct{ month, day, hour, min, sec, nsec int }

// parseStamp reads "Mmm dd hh:mm:ss[.ffffff]" with a day of " 1".." 9" or
// "10".."31" that exists in the month of a leap year.
func parseStamp(b []byte) (clock, int, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' {
		return clock{}, 0, false
	}
	mo := monthIndex(b[:3])
	var d int
	switch {
	case b[4] == ' ' && '1' <= b[5] && b[5] <= '9':
		d = int(b[5] - '0')
	case '1' <= b[4] && b[4] <= '3' && isDigit(b[5]):
		d = int(b[4]-'0')*10 + int(b[5]-'0')
	default:
		return clock{}, 0, false
	}
	if mo < 0 || d > daysIn[mo] {
		return clock{}, 0, false
	}
	h, mi, s, ns, end, ok := parseClock(b, 7)
	if !ok {
		return clock{}, 0, false
	}
	return clock{mo + 1, d, h, mi, s, ns}, end, true
}

// libraryStamp runs the go-syslog RFC 3164 machine on frame and returns
// the timestamp it found after the PRI (of length n) and where it ends.
func libraryStamp(frame []byte, n int) (time.Time, int, bool) {
	end := stampEnd(frame[n:])
	if end < 0 {
		return time.Time{}, 0, false
	}
	res, _ := rfc3164.NewMachine(rfc3164Options...).Parse(frame)
	x, ok := res.(*rfc3164.SyslogMessage)
	if !ok || x == nil || x.Timestamp == nil {
		return time.Time{}, 0, false
	}
	return *x.Timestamp, end, true
}

// stampEnd returns the length of the timestamp that starts rest, or -1
// when rest does not start with one followed by a space: "Mmm dd
// hh:mm:ss[.frac]" (the day maybe space-padded) or an RFC 3339 token. Only
// the shape is checked; the machine checks the values.
func stampEnd(rest []byte) int {
	var i int
	if isDigit(rest[0]) {
		i = bytes.IndexByte(rest, ' ')
		if i < 0 {
			return -1
		}
		return i
	}
	i = 3
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
	if i >= len(rest) || rest[i] != ' ' {
		return -1
	}
	return i
}
