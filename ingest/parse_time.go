package ingest

import "time"

// daysIn is the length of each month in a leap year.
var daysIn = [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// digits2 reads two decimal digits at b[i:].
func digits2(b []byte, i int) (int, bool) {
	if i+2 > len(b) || !isDigit(b[i]) || !isDigit(b[i+1]) {
		return 0, false
	}
	return int(b[i]-'0')*10 + int(b[i+1]-'0'), true
}

// parseClock reads "hh:mm:ss" and an optional fraction of one to six
// digits at b[i:], the RFC 5424 TIME (seconds 00-59) the go-syslog machines
// accept.
func parseClock(b []byte, i int) (h, mi, s, ns, end int, ok bool) {
	var ok1, ok2, ok3 bool
	h, ok1 = digits2(b, i)
	mi, ok2 = digits2(b, i+3)
	s, ok3 = digits2(b, i+6)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' || h > 23 || mi > 59 || s > 59 {
		return 0, 0, 0, 0, 0, false
	}
	i += 8
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		scale := 100000000
		for i < len(b) && isDigit(b[i]) && i-start < 6 {
			ns += int(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start || (i < len(b) && isDigit(b[i])) {
			return 0, 0, 0, 0, 0, false
		}
	}
	return h, mi, s, ns, i, true
}

// parseRFC3339 reads the timestamp the go-syslog machines accept at b[i:]:
// "YYYY-MM-DDThh:mm:ss[.ffffff](Z|+hh:mm|-hh:mm)" with a valid date. It
// returns the time and where it ends. A zero offset is UTC, as
// time.Parse gives it (with the same RFC 3339 spelling, "Z").
func parseRFC3339(b []byte, i int) (t time.Time, end int, ok bool) {
	if i+20 > len(b) {
		return time.Time{}, 0, false
	}
	y1, ok1 := digits2(b, i)
	y2, ok2 := digits2(b, i+2)
	mo, ok3 := digits2(b, i+5)
	d, ok4 := digits2(b, i+8)
	if !ok1 || !ok2 || !ok3 || !ok4 || b[i+4] != '-' || b[i+7] != '-' || b[i+10] != 'T' {
		return time.Time{}, 0, false
	}
	y := y1*100 + y2
	if mo < 1 || mo > 12 || d < 1 || d > daysIn[mo-1] || (mo == 2 && d == 29 && !isLeap(y)) {
		return time.Time{}, 0, false
	}
	h, mi, s, ns, j, ok := parseClock(b, i+11)
	if !ok || j >= len(b) {
		return time.Time{}, 0, false
	}
	loc := time.UTC
	switch b[j] {
	case 'Z':
		j++
	case '+', '-':
		oh, ok1 := digits2(b, j+1)
		om, ok2 := digits2(b, j+4)
		if !ok1 || !ok2 || b[j+3] != ':' || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		if off := (oh*60 + om) * 60; off != 0 {
			if b[j] == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
		}
		j += 6
	default:
		return time.Time{}, 0, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, loc), j, true
}
