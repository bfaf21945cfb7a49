package ingest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/transform"
)

// gelfDrop is why a GELF message was not published: the "reason" label of
// logviewer_dropped_total and the cause.
type gelfDrop struct {
	reason string
	err    error
}

func (d *gelfDrop) Error() string { return d.reason + ": " + d.err.Error() }
func (d *gelfDrop) Unwrap() error { return d.err }

func gelfInvalid(format string, args ...any) error {
	return &gelfDrop{reason: metrics.DropGELFInvalid, err: fmt.Errorf(format, args...)}
}

func gelfTooLarge(size, limit int) error {
	return &gelfDrop{reason: metrics.DropGELFTooLarge, err: fmt.Errorf("%d bytes or more, limit %d", size, limit)}
}

// dropReason returns the metrics reason of a decode error.
func dropReason(err error) string {
	var d *gelfDrop
	if errors.As(err, &d) {
		return d.reason
	}
	return metrics.DropGELFInvalid
}

// gelfFirst are the GELF fields written first, in this order, when present;
// the others follow sorted by name.
var gelfFirst = [...]string{"version", "host", "short_message", "full_message", "timestamp", "level"}

// gelfDecoder turns one GELF payload (plain, gzip or zlib JSON) into the
// record that is published. Each goroutine that decodes has its own: it
// reuses its decompressors and buffers from one message to the next.
type gelfDecoder struct {
	maxSize int  // bytes a message may have once decompressed
	fromApp bool // channel from _container_name, _app or facility

	src     bytes.Reader
	gz      *gzip.Reader
	zl      io.ReadCloser
	plain   bytes.Buffer // the decompressed payload
	compact bytes.Buffer // the payload with its insignificant space removed
	fields  map[string]json.RawMessage
	keys    []string
	out     []byte
}

func newGELFDecoder(maxSize int, fromApp bool) *gelfDecoder {
	return &gelfDecoder{maxSize: maxSize, fromApp: fromApp, fields: make(map[string]json.RawMessage)}
}

// decode decompresses payload when it is gzip or zlib, checks it is a GELF
// record and returns the record to publish and its channel. Fields the
// sender left out that GELF 1.1 requires are filled in from peer and
// received. replaced reports invalid UTF-8 replaced with U+FFFD. The record
// is valid until the next call. An error is a *gelfDrop.
func (d *gelfDecoder) decode(payload []byte, peer peerName, received time.Time) (record []byte, channel string, replaced bool, err error) {
	plain, err := d.decompress(payload)
	if err != nil {
		return nil, "", false, err
	}
	return d.record(plain, peer, received)
}

// isGzip and isZlib recognise compressed payloads by their first bytes
// (zlib: deflate with a 32 KiB window at any of the four compression levels).
func isGzip(p []byte) bool { return len(p) >= 2 && p[0] == 0x1f && p[1] == 0x8b }

func isZlib(p []byte) bool {
	return len(p) >= 2 && p[0] == 0x78 && (p[1] == 0x01 || p[1] == 0x5e || p[1] == 0x9c || p[1] == 0xda)
}

// decompress returns payload itself when it is not compressed, else its
// decompressed bytes, read at most d.maxSize+1 of them so that a small
// payload cannot make a huge message.
func (d *gelfDecoder) decompress(payload []byte) ([]byte, error) {
	var r io.Reader
	switch {
	case isGzip(payload):
		d.src.Reset(payload)
		var err error
		if d.gz == nil {
			d.gz, err = gzip.NewReader(&d.src)
		} else {
			err = d.gz.Reset(&d.src)
		}
		if err != nil {
			return nil, gelfInvalid("gzip: %w", err)
		}
		r = d.gz
	case isZlib(payload):
		d.src.Reset(payload)
		var err error
		if d.zl == nil {
			d.zl, err = zlib.NewReader(&d.src)
		} else {
			err = d.zl.(zlib.Resetter).Reset(&d.src, nil)
		}
		if err != nil {
			return nil, gelfInvalid("zlib: %w", err)
		}
		r = d.zl
	default:
		if len(payload) > d.maxSize {
			return nil, gelfTooLarge(len(payload), d.maxSize)
		}
		return payload, nil
	}
	d.plain.Reset()
	n, err := d.plain.ReadFrom(io.LimitReader(r, int64(d.maxSize)+1))
	if err != nil {
		return nil, gelfInvalid("decompress: %w", err)
	}
	if n > int64(d.maxSize) {
		return nil, gelfTooLarge(int(n), d.maxSize)
	}
	return d.plain.Bytes(), nil
}

// record checks that plain is a JSON object with a non-empty short_message
// and re-encodes it as compact JSON: its own fields (the GELF ones first,
// then the others by name), numbers exactly as sent, version, host,
// timestamp and _app_name (the sending host) added when missing, and _id
// (reserved by GELF), _event_id and _channel (the bus sets them) removed.
func (d *gelfDecoder) record(plain []byte, peer peerName, received time.Time) ([]byte, string, bool, error) {
	// Some senders end a datagram with a NUL, as over TCP.
	plain = bytes.TrimRight(plain, "\x00")
	d.compact.Reset()
	if err := json.Compact(&d.compact, plain); err != nil {
		return nil, "", false, gelfInvalid("json: %w", err)
	}
	js := d.compact.Bytes()
	if len(js) == 0 || js[0] != '{' {
		return nil, "", false, gelfInvalid("json: not an object")
	}
	// JSON outside its strings is ASCII, so replacing invalid UTF-8 here
	// only ever changes string contents, keys included.
	replaced := !utf8.Valid(js)
	if replaced {
		js = bytes.ToValidUTF8(js, []byte("\uFFFD"))
	}
	clear(d.fields)
	if err := json.Unmarshal(js, &d.fields); err != nil {
		return nil, "", false, gelfInvalid("json: %w", err)
	}
	f := d.fields
	if msg := f["short_message"]; len(msg) < 3 || msg[0] != '"' {
		// Missing, "", null, or not a string.
		return nil, "", false, gelfInvalid("no short_message")
	}
	delete(f, "_id")
	delete(f, "_event_id")
	delete(f, "_channel")

	d.keys = d.keys[:0]
	for k := range f {
		if !slices.Contains(gelfFirst[:], k) {
			d.keys = append(d.keys, k)
		}
	}
	if _, ok := f["_app_name"]; !ok {
		d.keys = append(d.keys, "_app_name")
	}
	slices.Sort(d.keys)

	out := append(d.out[:0], '{')
	out = appendField(out, "version", f["version"], func(b []byte) []byte { return append(b, `"1.1"`...) })
	out = appendField(out, "host", f["host"], func(b []byte) []byte { return appendJSONString(b, peer.name) })
	out = appendField(out, "short_message", f["short_message"], nil)
	out = appendField(out, "full_message", f["full_message"], nil)
	ts := f["timestamp"]
	if len(ts) > 0 && !isJSONNumber(ts) {
		ts = nil // a string or an object is no time: the reception time stands in
	}
	out = appendField(out, "timestamp", ts, func(b []byte) []byte { return appendUnixMilli(b, received) })
	out = appendField(out, "level", f["level"], nil)
	for _, k := range d.keys {
		var def func([]byte) []byte
		if k == "_app_name" {
			def = func(b []byte) []byte { return appendJSONString(b, peer.name) }
		}
		out = appendField(out, k, f[k], def)
	}
	out = append(out, '}')
	d.out = out
	return out, d.channel(peer), replaced, nil
}

// appendField appends ,"key":value to the object in dst, or ,"key":def()
// when value is missing, null or "" and def is not nil, or nothing.
func appendField(dst []byte, key string, value json.RawMessage, def func([]byte) []byte) []byte {
	missing := len(value) == 0 || string(value) == "null" || string(value) == `""`
	if missing && def == nil {
		if len(value) == 0 {
			return dst
		}
		missing = false // an explicit null or "" is the sender's
	}
	if len(dst) > 1 {
		dst = append(dst, ',')
	}
	dst = appendJSONString(dst, key)
	dst = append(dst, ':')
	if missing {
		return def(dst)
	}
	return append(dst, value...)
}

// channel returns the record's channel: the sender's, or with fromApp the
// first of _container_name, _app and facility that is a non-empty string.
func (d *gelfDecoder) channel(peer peerName) string {
	if d.fromApp {
		for _, k := range [...]string{"_container_name", "_app", "facility"} {
			v := d.fields[k]
			if len(v) < 3 || v[0] != '"' {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				return transform.ChannelName(s)
			}
		}
	}
	return peer.channel
}

func isJSONNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || '0' <= v[0] && v[0] <= '9')
}

// appendJSONString appends s, which is valid UTF-8, as a quoted JSON string.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendUnixMilli appends t as seconds since the epoch with a three-digit
// millisecond fraction, as the syslog records have it.
func appendUnixMilli(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
