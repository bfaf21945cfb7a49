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
	if i < 0 || i+8 > len(b) {
		return 0, 0, 0, 0, 0, false
	}
	c := b[i : i+8 : i+8]
	h1, h2, m1, m2, s1, s2 := c[0]-'0', c[1]-'0', c[3]-'0', c[4]-'0', c[6]-'0', c[7]-'0'
	// Bytes below '0' wrap around to large values, so one bound checks
	// both ends.
	if h1 > 9 || h2 > 9 || m1 > 9 || m2 > 9 || s1 > 9 || s2 > 9 || c[2] != ':' || c[5] != ':' {
		return 0, 0, 0, 0, 0, false
	}
	h, mi, s = int(h1)*10+int(h2), int(m1)*10+int(m2), int(s1)*10+int(s2)
	if h > 23 || mi > 59 || s > 59 {
		return 0, 0, 0, 0, 0, false
	}
	i += 8
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) && i-start < 6 {
			ns = ns*10 + int(b[i]-'0')
			i++
		}
		if i == start || (i < len(b) && isDigit(b[i])) {
			return 0, 0, 0, 0, 0, false
		}
		ns *= fracScale[i-start]
	}
	return h, mi, s, ns, i, true
}

// fracScale[n] turns n digits of a fraction of a second into nanoseconds.
var fracScale = [7]int{0, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3}

// parseRFC3339 reads the timestamp the go-syslog machines accept at b[i:]:
// "YYYY-MM-DDThh:mm:ss[.ffffff](Z|+hh:mm|-hh:mm)" with a valid date. It
// returns the time and where it ends. A zero offset is UTC, as
// time.Parse gives it (with the same RFC 3339 spelling, "Z").
// zones, when not nil, gives the zone of an offset (see zoneCache).
func parseRFC3339(b []byte, i int, zones *zoneCache) (t time.Time, end int, ok bool) {
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
	var off int
	switch b[j] {
	case 'Z':
		j++
	case '+', '-':
		oh, ok1 := digits2(b, j+1)
		om, ok2 := digits2(b, j+4)
		if !ok1 || !ok2 || b[j+3] != ':' || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		off = (oh*60 + om) * 60
		if b[j] == '-' {
			off = -off
		}
		j += 6
	default:
		return time.Time{}, 0, false
	}
	t = dateUTC(y, clock{mo, d, h, mi, s, ns})
	if off != 0 {
		t = t.Add(-time.Duration(off) * time.Second).In(zones.zone(off))
	}
	return t, j, true
}

// zoneCache holds the zone of the last UTC offset it was asked for: a
// sender's timestamps keep their offset, and then share one zone instead
// of allocating one each (and the encoder's cache of the zone's text,
// keyed by the zone, holds).
type zoneCache struct {
	off int
	loc *time.Location
}

// zone returns a fixed zone of off seconds east of UTC, the one it gave
// last when off is the same; a nil cache makes a new one each time.
func (z *zoneCache) zone(off int) *time.Location {
	if z == nil {
		return time.FixedZone("", off)
	}
	if z.loc == nil || z.off != off {
		z.off, z.loc = off, time.FixedZone("", off)
	}
	return z.loc
}

// dateUTC returns c in year y, UTC, as time.Date(y, c.month, c.day, ...,
// time.UTC) does (a February 29 of a common year is March 1), without its
// normalisation of out-of-range fields, which parseStamp rules out.
func dateUTC(y int, c clock) time.Time {
	if y < 1 || y > 9999 {
		return time.Date(y, time.Month(c.month), c.day, c.hour, c.min, c.sec, c.nsec, time.UTC)
	}
	// Days from 0000-03-01 to the date: years that start in March put
	// the leap day last, so each month but February has a fixed start
	// ((153*m+2)/5 days from March 1 for the m-th month from March).
	m := c.month - 3
	if m < 0 {
		m += 12
		y--
	}
	days := 365*y + y/4 - y/100 + y/400 + (153*m+2)/5 + c.day - 1
	const unixDays = 719468 // days from 0000-03-01 to 1970-01-01
	sec := int64(days-unixDays)*86400 + int64(c.hour*3600+c.min*60+c.sec)
	return time.Unix(sec, int64(c.nsec)).UTC()
}

// yearUTC returns t.UTC().Year().
func yearUTC(t time.Time) int {
	sec := t.Unix()
	if sec < 0 || sec >= 253402300800 { // outside 1970-9999
		return t.UTC().Year()
	}
	// As in dateUTC, in quarter days from 0000-03-01: over the days of
	// 400 years the century, then over the days of 4 years the year.
	n := 4*(uint64(sec)/86400+719468) + 3
	century := n / 146097
	n = n%146097 | 3
	y := int(100*century + n/1461)
	if n%1461/4 >= 306 { // January or February
		y++
	}
	return y
}
