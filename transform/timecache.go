package transform

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"
)

// Records come in bursts with close timestamps, so an Encoder keeps the
// text of the last second of "timestamp" and of the last minute of
// "_log_time" it wrote, each in an immutable value behind an atomic
// pointer. A value is replaced only by one for a later time, so that
// senders with different clocks or zones never make the encoder allocate
// more than once per second or minute of time that passes: the one whose
// time is not cached goes the uncached way.

// receivedText is the cached text of one second of "timestamp".
type receivedText struct {
	start int64    // the second's start, as milliseconds since the epoch; ten digits of seconds
	text  [16]byte // the ten digits and the '.' before the milliseconds
}

// appendReceived appends t as AppendUnixMilli does.
func (e *Encoder) appendReceived(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	c := (*receivedText)(atomic.LoadPointer(&e.received))
	if c == nil || uint64(ms-c.start) >= 1000 {
		if ms < 1e12 || ms >= 1e13 { // not ten digits of seconds
			return AppendUnixMilli(dst, t)
		}
		start := ms - ms%1000
		if c != nil && start < c.start {
			return AppendUnixMilli(dst, t)
		}
		c = &receivedText{start: start}
		AppendUnixMilli(c.text[:0], time.UnixMilli(start))
		atomic.StorePointer(&e.received, unsafe.Pointer(c))
	}
	frac := int(ms - c.start)
	dst = slices.Grow(dst, 16)
	n := len(dst)
	b := dst[n : n+16]
	binary.LittleEndian.PutUint64(b[:8], binary.LittleEndian.Uint64(c.text[:8]))
	binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(c.text[8:]))
	binary.LittleEndian.PutUint32(b[11:15], threeDigits[frac])
	return dst[:n+14]
}

// logTimeText is the cached text of one local minute of "_log_time" in
// one zone.
type logTimeText struct {
	start int64    // the local time of the minute's start, as seconds since 1970-01-01T00:00:00
	off   int      // the zone's offset, seconds east of UTC
	date  [16]byte // 2006-01-02T15:04
	zone  [8]byte  // Z or -07:00
	zoneN int      // the length of zone
}

// appendLogTime appends t as appendRFC3339Nano does.
func (e *Encoder) appendLogTime(dst []byte, t time.Time) []byte {
	var off int
	if t.Location() != time.UTC { // UTC, common, needs no zone lookup
		_, off = t.Zone()
	}
	// Out of the range of the cached minute, local may have wrapped
	// around; it is only used once off and t.Unix() are known to be in
	// range.
	local := t.Unix() + int64(off)
	c := (*logTimeText)(atomic.LoadPointer(&e.logTime))
	if c == nil || c.off != off || uint64(local-c.start) >= 60 {
		sec := t.Unix()
		if off < -maxZoneOffset || off > maxZoneOffset ||
			sec < minRFC3339Sec-maxZoneOffset || sec > maxRFC3339Sec+maxZoneOffset ||
			local < minRFC3339Sec || local > maxRFC3339Sec {
			return t.AppendFormat(dst, time.RFC3339Nano)
		}
		start := local - int64(uint64(local-minRFC3339Sec)%60)
		if c != nil && start <= c.start {
			return appendRFC3339Nano(dst, t)
		}
		c = newLogTimeText(start, off)
		atomic.StorePointer(&e.logTime, unsafe.Pointer(c))
	}
	// Room for the longest text, 35 bytes, with the zone written as a
	// whole word.
	dst = slices.Grow(dst, 29+8)
	n := len(dst)
	b := dst[n : n+29+8]
	binary.LittleEndian.PutUint64(b[:8], binary.LittleEndian.Uint64(c.date[:8]))
	binary.LittleEndian.PutUint64(b[8:16], binary.LittleEndian.Uint64(c.date[8:]))
	b[16] = ':'
	put2(b, 17, int(local-c.start))
	k := putFraction(b, t.Nanosecond())
	binary.LittleEndian.PutUint64(b[k:k+8], binary.LittleEndian.Uint64(c.zone[:]))
	return dst[:n+k+c.zoneN]
}

// newLogTimeText makes the cached text of the local minute that starts at
// start, in the zone off seconds east of UTC.
func newLogTimeText(start int64, off int) *logTimeText {
	c := &logTimeText{start: start, off: off}
	y, mo, d, h, mi, _ := civil(start)
	putMinute(c.date[:], y, mo, d, h, mi)
	c.zoneN = putZone(c.zone[:], off)
	return c
}
