package transform

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"
)

// twoDigits spells the numbers 00 to 99, two bytes each.
var twoDigits = func() (t [200]byte) {
	for i := range 100 {
		t[2*i], t[2*i+1] = byte('0'+i/10), byte('0'+i%10)
	}
	return t
}()

// threeDigits spells the numbers 000 to 999 in the low three bytes of a
// word each.
var threeDigits = func() (t [1000]uint32) {
	for i := range t {
		t[i] = uint32('0'+i/100) | uint32('0'+i/10%10)<<8 | uint32('0'+i%10)<<16
	}
	return t
}()

// put2 writes v (0 to 99) as two digits at b[i:].
func put2(b []byte, i int, v int) {
	_ = b[i+1]
	b[i], b[i+1] = twoDigits[2*v], twoDigits[2*v+1]
}

// AppendUnixMilli appends t as seconds since the epoch with a three-digit
// millisecond fraction ("1732456123.456"), never in exponent form.
func AppendUnixMilli(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms == math.MinInt64 { // has no positive counterpart
		dst = strconv.AppendInt(append(dst, '-'), ms/1000, 10)
		frac := ms % 1000
		return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	u := uint64(ms)
	if ms < 0 {
		dst = append(dst, '-')
		u = uint64(-ms)
	}
	frac := int(u % 1000)
	u /= 1000
	if 1e9 <= u && u < 1e10 { // from 2001-09-09 to 2286-11-20: ten digits
		dst = slices.Grow(dst, 14)
		n := len(dst)
		b := dst[n : n+14]
		hi, lo := int(u/1e5), int(u%1e5) // five digits each
		put2(b, 0, hi/1000)
		put2(b, 2, hi/10%100)
		put2(b, 4, hi%10*10+lo/10000)
		put2(b, 6, lo/100%100)
		put2(b, 8, lo%100)
		b[10] = '.'
		b[11] = byte('0' + frac/100)
		put2(b, 12, frac%100)
		return dst[:n+14]
	}
	digits := decimalLen(u)
	dst = slices.Grow(dst, digits+4)
	n := len(dst)
	b := dst[n : n+digits+4]
	b[digits] = '.'
	b[digits+1] = byte('0' + frac/100)
	put2(b, digits+2, frac%100)
	i := digits
	for u >= 100 {
		q := u / 100
		i -= 2
		put2(b, i, int(u-q*100))
		u = q
	}
	if u >= 10 {
		put2(b, i-2, int(u))
	} else {
		b[i-1] = byte('0' + u)
	}
	return dst[:n+digits+4]
}

// decimalLen returns the number of decimal digits of u.
func decimalLen(u uint64) int {
	// bits.Len64(u)*1233>>12 is log10(2**bits.Len64(u)) rounded down:
	// the number of digits less one, or one less still.
	d := bits.Len64(u) * 1233 >> 12
	if u >= pow10[d] {
		d++
	}
	return max(d, 1)
}

// pow10 holds the powers of ten that fit in a uint64.
var pow10 = [20]uint64{
	1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// The range of local times that RFC 3339 spells with four-digit years.
const (
	minRFC3339Sec = -62167219200 // 0000-01-01T00:00:00
	maxRFC3339Sec = 253402300799 // 9999-12-31T23:59:59
	maxZoneOffset = 100*3600 - 1 // the largest offset with two-digit hours
)

// appendRFC3339Nano appends t as t.AppendFormat(dst, time.RFC3339Nano)
// does, byte for byte, without going through the general formatter: the
// fraction has its trailing zeros trimmed (none at all for whole seconds),
// a zero offset is "Z" and others are ±hh:mm (seconds of an offset are
// dropped, as AppendFormat drops them). Years outside 0000-9999 and offsets
// of 100 hours or more are left to AppendFormat.
func appendRFC3339Nano(dst []byte, t time.Time) []byte {
	var off int
	if t.Location() != time.UTC { // UTC, common, needs no zone lookup
		_, off = t.Zone()
	}
	sec := t.Unix()
	if off < -maxZoneOffset || off > maxZoneOffset ||
		sec < minRFC3339Sec-maxZoneOffset || sec > maxRFC3339Sec+maxZoneOffset {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	local := sec + int64(off)
	if local < minRFC3339Sec || local > maxRFC3339Sec {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	y, mo, d, h, mi, s := civil(local)
	dst = slices.Grow(dst, 35)
	start := len(dst)
	b := dst[start : start+35]
	putMinute(b, y, mo, d, h, mi)
	b[16] = ':'
	put2(b, 17, s)
	n := putFraction(b, t.Nanosecond())
	n += putZone(b[n:], off)
	return dst[:start+n]
}

// putFraction writes the fraction of a second of ns nanoseconds as
// appendRFC3339Nano does, after the 19 bytes of the date and clock in b,
// and returns the length of the text so far: 19 when ns is 0, which has no
// fraction, else 20 and the digits of ns without its trailing zeros.
func putFraction(b []byte, ns int) int {
	if ns == 0 {
		return 19
	}
	if ns%1000000 == 0 { // whole milliseconds, as most are: from a table
		f := millisFractions[ns/1000000]
		binary.LittleEndian.PutUint32(b[19:23], uint32(f))
		return 19 + int(f>>32)
	}
	w := 9 // the number of digits
	if ns%1000 == 0 {
		ns, w = ns/1000, 6
	}
	switch {
	case ns%100 == 0:
		ns, w = ns/100, w-2
	case ns%10 == 0:
		ns, w = ns/10, w-1
	}
	b[19] = '.'
	n := 20 + w
	i := n
	for k := w; k >= 2; k -= 2 {
		i -= 2
		put2(b, i, ns%100)
		ns /= 100
	}
	if w&1 != 0 {
		b[i-1] = byte('0' + ns)
	}
	return n
}

// millisFractions holds the fraction of a second of each whole number of
// milliseconds as putFraction writes it, ".5" for 500, in the low bytes of
// a word and its length, 2 to 4, in the high half.
var millisFractions = func() (t [1000]uint64) {
	for ms := 1; ms < len(t); ms++ {
		w := [4]byte{'.', byte('0' + ms/100), byte('0' + ms/10%10), byte('0' + ms%10)}
		n := len(w)
		for w[n-1] == '0' { // trailing zeros go
			n--
			w[n] = 0
		}
		t[ms] = uint64(binary.LittleEndian.Uint32(w[:])) | uint64(n)<<32
	}
	return t
}()

// putZone writes the zone off seconds east of UTC (less than 100 hours
// either way) to the start of b as appendRFC3339Nano does, "Z" or
// "+hh:mm", and returns its length.
func putZone(b []byte, off int) int {
	if off == 0 {
		b[0] = 'Z'
		return 1
	}
	zone := off / 60 // minutes, cut toward zero as AppendFormat does
	b[0] = '+'
	if zone < 0 {
		b[0] = '-'
		zone = -zone
	}
	put2(b, 1, zone/60)
	b[3] = ':'
	put2(b, 4, zone%60)
	return 6
}

// civil splits local, seconds since 1970-01-01T00:00:00 between the years 0
// and 9999 of the proleptic Gregorian calendar, into its date and clock.
func civil(local int64) (year, month, day, hour, minute, second int) {
	const secondsPerDay = 86400
	secs := uint64(local - minRFC3339Sec) // from 0000-01-01, never negative
	days := secs / secondsPerDay
	rem := int(secs - days*secondsPerDay) // seconds into the day
	// Count days from 0000-03-01, so that a year ends with February and
	// its leap day, moved one 400-year cycle on (146097 days) so that the
	// count is never negative. Then, as quarter days: 4*days+3 over the
	// days of 400 years is the century and, over the days of 4 years in
	// the century, the year; the day of the year gives the month and the
	// day by a linear fit (153 days per 5 months, as 2141/65536).
	n := 4*(days+146097-(31+29)) + 3
	century := n / 146097
	n = n%146097 | 3 // 4*(day of the century)+3
	yoc := n / 1461  // year of the century
	doy := n % 1461 / 4
	m := 2141*doy + 197913 // month from March in the high half, day in the low
	month = int(m >> 16)
	day = int(m&0xffff)/2141 + 1
	year = int(100*century+yoc) - 400
	if doy >= 306 { // January or February: the next calendar year
		month -= 12
		year++
	}
	return year, month, day, rem / 3600, rem / 60 % 60, rem % 60
}

// putMinute writes "YYYY-MM-DDThh:mm" to the first 16 bytes of b.
func putMinute(b []byte, y, mo, d, h, mi int) {
	b = b[:16]
	put2(b, 0, y/100)
	put2(b, 2, y%100)
	b[4] = '-'
	put2(b, 5, mo)
	b[7] = '-'
	put2(b, 8, d)
	b[10] = 'T'
	put2(b, 11, h)
	b[13] = ':'
	put2(b, 14, mi)
}
