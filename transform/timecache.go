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
	sec  int64    // seconds since the epoch, ten digits
	text [16]byte // the ten digits and the '.' before the milliseconds
}

// appendReceived appends t as AppendUnixMilli does.
func (e *Encoder) appendReceived(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 1e12 || ms >= 1e13 { // not ten digits of seconds
		return AppendUnixMilli(dst, t)
	}
	sec, frac := int64(uint64(ms)/1000), int(uint64(ms)%1000)
	c := (*receivedText)(atomic.LoadPointer(&e.received))
	if c == nil || c.sec != sec {
		if c != nil && sec < c.sec {
			return AppendUnixMilli(dst, t)
		}
		c = &receivedText{sec: sec}
		AppendUnixMilli(c.text[:0], time.Unix(sec, 0))
		atomic.StorePointer(&e.received, unsafe.Pointer(c))
	}
	dst = slices.Grow(dst, 16)
	n := len(dst)
	b := dst[n : n+16]
	binary.LittleEndian.PutUint64(b[:8], binary.LittleEndian.Uint64(c.text[:8]))
	binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(c.text[8:]))
	b[11] = byte('0' + frac/100)
	put2(b, 12, frac%100)
	return dst[:n+14]
}

// logTimeText is the cached text of one local minute of "_log_time" in
// one zone.
type logTimeText struct {
	minute int64    // local minutes since 0000-01-01T00:00
	off    int      // the zone's offset, seconds east of UTC
	date   [16]byte // 2006-01-02T15:04
	zone   [8]byte  // Z or -07:00
	zoneN  int      // the length of zone
}

// appendLogTime appends t as appendRFC3339Nano does.
func (e *Encoder) appendLogTime(dst []byte, t time.Time) []byte {
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
	since := uint64(local - minRFC3339Sec) // never negative
	minute, s := int64(since/60), int(since%60)
	c := (*logTimeText)(atomic.LoadPointer(&e.logTime))
	if c == nil || c.minute != minute || c.off != off {
		if c != nil && minute <= c.minute {
			return appendRFC3339Nano(dst, t)
		}
		c = newLogTimeText(minute, off)
		atomic.StorePointer(&e.logTime, unsafe.Pointer(c))
	}
	// Room for the longest text, 35 bytes, with the zone written as a
	// whole word.
	dst = slices.Grow(dst, 29+8)
	start := len(dst)
	b := dst[start : start+29+8]
	binary.LittleEndian.PutUint64(b[:8], binary.LittleEndian.Uint64(c.date[:8]))
	binary.LittleEndian.PutUint64(b[8:16], binary.LittleEndian.Uint64(c.date[8:]))
	b[16] = ':'
	put2(b, 17, s)
	n := putFraction(b, t.Nanosecond())
	binary.LittleEndian.PutUint64(b[n:n+8], binary.LittleEndian.Uint64(c.zone[:]))
	return dst[:start+n+c.zoneN]
}

// newLogTimeText makes the cached text of a local minute, counted from
// 0000-01-01T00:00, in the zone off seconds east of UTC.
func newLogTimeText(minute int64, off int) *logTimeText {
	c := &logTimeText{minute: minute, off: off}
	y, mo, d, h, mi, _ := civil(minute*60 + minRFC3339Sec)
	b := c.date[:]
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
	c.zoneN = putZone(c.zone[:], off)
	return c
}
