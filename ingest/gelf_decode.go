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
	fields  []gelfField  // the record's members, by name
	out     []byte
}

func newGELFDecoder(maxSize int, fromApp bool) *gelfDecoder {
	return &gelfDecoder{maxSize: maxSize, fromApp: fromApp}
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
	if err := d.split(js); err != nil {
		return nil, "", false, err
	}
	if msg := d.get("short_message"); len(msg) < 3 || msg[0] != '"' {
		// Missing, "", null, or not a string.
		return nil, "", false, gelfInvalid("no short_message")
	}

	out := append(d.out[:0], '{')
	out = appendField(out, "version", d.get("version"), func(b []byte) []byte { return append(b, `"1.1"`...) })
	out = appendField(out, "host", d.get("host"), func(b []byte) []byte { return appendJSONString(b, peer.name) })
	out = appendField(out, "short_message", d.get("short_message"), nil)
	out = appendField(out, "full_message", d.get("full_message"), nil)
	ts := d.get("timestamp")
	if len(ts) > 0 && !isJSONNumber(ts) {
		ts = nil // a string or an object is no time: the reception time stands in
	}
	out = appendField(out, "timestamp", ts, func(b []byte) []byte { return transform.AppendUnixMilli(b, received) })
	out = appendField(out, "level", d.get("level"), nil)
	for _, f := range d.fields {
		switch string(f.name) {
		case "version", "host", "short_message", "full_message", "timestamp", "level",
			"_id", "_event_id", "_channel":
			continue
		case "_app_name":
			if f.value == nil || string(f.value) == "null" || string(f.value) == `""` {
				out = appendField(out, "_app_name", nil, func(b []byte) []byte { return appendJSONString(b, peer.name) })
				continue
			}
		}
		out = append(out, ',')
		out = append(out, f.key...)
		out = append(out, ':')
		out = append(out, f.value...)
	}
	out = append(out, '}')
	d.out = out
	return out, d.channel(peer), replaced, nil
}

// gelfField is one member of a record's object.
type gelfField struct {
	name  []byte // the key, unescaped
	key   []byte // the key as sent, quoted
	value []byte // compact JSON
}

// split cuts js, one compact and valid JSON object, into its members,
// sorted by name, the last one kept when a name repeats (as
// encoding/json does), and _app_name added with no value when missing.
// Valid JSON makes the scan simple: no space, every string closed, every
// bracket matched.
func (d *gelfDecoder) split(js []byte) error {
	d.fields = d.fields[:0]
	for i := 1; js[i] != '}'; {
		k := jsonStringEnd(js, i)
		v := jsonValueEnd(js, k+1)
		f := gelfField{key: js[i:k], value: js[k+1 : v]}
		f.name = f.key[1 : len(f.key)-1]
		if bytes.IndexByte(f.name, '\\') >= 0 {
			var name string
			if err := json.Unmarshal(f.key, &name); err != nil {
				return gelfInvalid("json key %s: %w", f.key, err)
			}
			f.name = []byte(name)
		}
		d.fields = append(d.fields, f)
		i = v
		if js[i] == ',' {
			i++
		}
	}
	slices.SortStableFunc(d.fields, func(a, b gelfField) int { return bytes.Compare(a.name, b.name) })
	// Of equal names keep the last, which the stable sort left last.
	kept := d.fields[:0]
	for i, f := range d.fields {
		if i+1 < len(d.fields) && bytes.Equal(f.name, d.fields[i+1].name) {
			continue
		}
		kept = append(kept, f)
	}
	d.fields = kept
	if i, found := d.find("_app_name"); !found {
		d.fields = slices.Insert(d.fields, i, gelfField{name: []byte("_app_name")})
	}
	return nil
}

// find returns where the field name is or would be in d.fields.
func (d *gelfDecoder) find(name string) (int, bool) {
	return slices.BinarySearchFunc(d.fields, name, func(f gelfField, name string) int {
		return compareName(f.name, name)
	})
}

// compareName is bytes.Compare(a, []byte(b)) without the conversion.
func compareName(a []byte, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

// get returns the value of the field name, nil when there is none.
func (d *gelfDecoder) get(name string) []byte {
	if i, ok := d.find(name); ok {
		return d.fields[i].value
	}
	return nil
}

// jsonStringEnd returns the index just past the JSON string that starts
// at js[i] (its opening quote).
func jsonStringEnd(js []byte, i int) int {
	for j := i + 1; ; j++ {
		switch js[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// jsonValueEnd returns the index just past the compact JSON value that
// starts at js[i].
func jsonValueEnd(js []byte, i int) int {
	switch js[i] {
	case '"':
		return jsonStringEnd(js, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch js[j] {
			case '"':
				j = jsonStringEnd(js, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	// A number, true, false or null: it ends at the next ',' or '}'.
	j := i
	for js[j] != ',' && js[j] != '}' {
		j++
	}
	return j
}

// appendField appends ,"key":value to the object in dst, or ,"key":def()
// when value is missing, null or "" and def is not nil, or nothing.
func appendField(dst []byte, key string, value []byte, def func([]byte) []byte) []byte {
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
			v := d.get(k)
			if len(v) < 3 || v[0] != '"' {
				continue
			}
			if bytes.IndexByte(v, '\\') < 0 {
				return transform.ChannelName(string(v[1 : len(v)-1]))
			}
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				return transform.ChannelName(s)
			}
		}
	}
	return peer.channel
}

func isJSONNumber(v []byte) bool {
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
