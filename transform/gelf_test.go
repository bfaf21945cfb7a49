package transform

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var testReceived = time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)

// fullMessage has every field set.
func fullMessage() *Message {
	return &Message{
		Received:  testReceived,
		Peer:      "app-host.example",
		Transport: "tcp",
		Format:    FormatRFC5424,
		Facility:  16,
		Severity:  4,
		Timestamp: time.Date(2026, 11, 24, 11, 59, 59, 500e6, time.FixedZone("", -3*3600)),
		Hostname:  "web-1",
		TLSPeer:   "shop-sender",
		AppName:   "shop",
		ProcID:    "42",
		MsgID:     "ORDER",
		StructuredData: []SDElement{
			{ID: "origin", Params: []SDParam{{Name: "ip", Value: "10.0.0.1"}}},
			{ID: "zoo@123", Params: []SDParam{{Name: "tiger", Value: "hungry"}, {Name: "x y", Value: `"q"`}}},
		},
		Text:      []byte("order 17 paid"),
		Truncated: true,
	}
}

func TestAppendFullRecord(t *testing.T) {
	enc := Encoder{Hostname: "logviewer-1", Group: "lr"}
	out, replaced := enc.Append(nil, fullMessage())
	if replaced {
		t.Errorf("replaced = true for valid UTF-8")
	}
	want := `{"version":"1.1","host":"logviewer-1","short_message":"order 17 paid","timestamp":1795521600.123,"level":4,` +
		`"_app_name":"app-host.example","_group":"lr","_facility":"local0","_app":"shop","_procid":"42","_msgid":"ORDER",` +
		`"_hostname":"web-1","_tls_peer":"shop-sender","_log_time":"2026-11-24T11:59:59.5-03:00","_sd_origin_ip":"10.0.0.1",` +
		`"_sd_zoo_123_tiger":"hungry","_sd_zoo_123_x_y":"\"q\"","_truncated":true}`
	if string(out) != want {
		t.Errorf("Append:\n got %s\nwant %s", out, want)
	}
	wantMap := map[string]any{
		"version": "1.1", "host": "logviewer-1", "short_message": "order 17 paid",
		"timestamp": json.Number("1795521600.123"), "level": json.Number("4"),
		"_app_name": "app-host.example", "_group": "lr", "_facility": "local0",
		"_app": "shop", "_procid": "42", "_msgid": "ORDER", "_hostname": "web-1", "_tls_peer": "shop-sender",
		"_log_time": "2026-11-24T11:59:59.5-03:00", "_sd_origin_ip": "10.0.0.1",
		"_sd_zoo_123_tiger": "hungry", "_sd_zoo_123_x_y": `"q"`, "_truncated": true,
	}
	if got := decode(t, out); !reflect.DeepEqual(got, wantMap) {
		t.Errorf("decoded:\n got %v\nwant %v", got, wantMap)
	}
}

func TestAppendMinimalRecord(t *testing.T) {
	enc := Encoder{Hostname: "h", Group: "g"}
	m := &Message{Received: testReceived, Peer: "10.1.2.3", Format: FormatRaw, Facility: 1, Severity: 5, Text: []byte("x")}
	out, _ := enc.Append(nil, m)
	want := `{"version":"1.1","host":"h","short_message":"x","timestamp":1795521600.123,"level":5,` +
		`"_app_name":"10.1.2.3","_group":"g","_facility":"user"}`
	if string(out) != want {
		t.Errorf("Append:\n got %s\nwant %s", out, want)
	}
}

func TestAppendCompat(t *testing.T) {
	enc := Encoder{Hostname: "logviewer-1", Group: "lr", Compat: true}
	out, _ := enc.Append([]byte("prefix:"), fullMessage())
	want := `prefix:{"_app_name":"app-host.example","host":"logviewer-1","short_message":"order 17 paid","timestamp":1795521600,"_group":"lr"}`
	if string(out) != want {
		t.Errorf("Append compat:\n got %s\nwant %s", out, want)
	}
}

func TestAppendTimestamp(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"whole second", time.Unix(1732456123, 0), "1732456123.000"},
		{"millis", time.Unix(1732456123, 456789000), "1732456123.456"},
		{"small fraction", time.Unix(1732456123, 7e6), "1732456123.007"},
		{"epoch", time.Unix(0, 0), "0.000"},
		{"before epoch", time.Unix(-2, 500e6), "-1.500"},
		{"zero time", time.Time{}, "-62135596800.000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendUnixMilli(nil, tc.t))
			if got != tc.want {
				t.Errorf("AppendUnixMilli(%v) = %s, want %s", tc.t, got, tc.want)
			}
			var f float64
			if err := json.Unmarshal([]byte(got), &f); err != nil {
				t.Errorf("not a JSON number: %v", err)
			}
		})
	}
}

func TestAppendLevelAndFacility(t *testing.T) {
	enc := Encoder{}
	for f := range 26 {
		for s := range 9 {
			m := &Message{Facility: uint8(f), Severity: uint8(s)}
			out, _ := enc.Append(nil, m)
			got := decode(t, out)
			wantLevel := json.Number(string(rune('0' + min(s, 7))))
			if got["level"] != wantLevel {
				t.Errorf("facility %d severity %d: level %v, want %v", f, s, got["level"], wantLevel)
			}
			var wantFac string
			if f < 24 {
				wantFac = facilityNames[f]
			} else {
				wantFac = string(rune('0'+f/10)) + string(rune('0'+f%10))
			}
			if got["_facility"] != wantFac {
				t.Errorf("facility %d: _facility %v, want %v", f, got["_facility"], wantFac)
			}
		}
	}
	if facilityNames[15] != "solaris-cron" || facilityNames[23] != "local7" || facilityNames[10] != "authpriv" {
		t.Errorf("facility names out of order: %v", facilityNames)
	}
}

// hostile inputs for every string the encoder writes.
var hostile = []struct {
	name string
	in   string
	want string // what a JSON decoder must read back
	repl bool
}{
	{"plain", "hello", "hello", false},
	{"empty", "", "", false},
	{"quotes and backslash", `a"b\c`, `a"b\c`, false},
	{"json injection", `"},{"x":1`, `"},{"x":1`, false},
	{"newline tab cr", "a\nb\tc\rd", "a\nb\tc\rd", false},
	{"control chars", "\x00\x01\x1f\x7f", "\x00\x01\x1f\x7f", false},
	{"line separators", "a\u2028b\u2029c", "a\u2028b\u2029c", false},
	{"multibyte", "ação 日本 🎉", "ação 日本 🎉", false},
	{"invalid byte", "a\xffb", "a\uFFFDb", true},
	{"lone continuation", "\x80", "\uFFFD", true},
	{"cut sequence", "ab\xe6\x97", "ab\uFFFD\uFFFD", true},
	{"overlong", "\xc0\xaf", "\uFFFD\uFFFD", true},
	{"surrogate", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD", true},
	{"past max rune", "\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD", true},
	{"html", "</script><b>&", "</script><b>&", false},
}

func TestAppendHostile(t *testing.T) {
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			m := &Message{
				Received: testReceived, Peer: tc.in, Text: []byte(tc.in), AppName: "a" + tc.in,
				ProcID: "p" + tc.in, MsgID: "m" + tc.in, Hostname: "h" + tc.in,
				StructuredData: []SDElement{{ID: "id" + tc.in, Params: []SDParam{{Name: "n" + tc.in, Value: tc.in}}}},
			}
			for _, compat := range []bool{false, true} {
				enc := Encoder{Hostname: tc.in, Group: tc.in, Compat: compat}
				out, replaced := enc.Append(nil, m)
				if !json.Valid(out) {
					t.Fatalf("compat=%v: invalid JSON: %s", compat, out)
				}
				if !utf8.Valid(out) {
					t.Fatalf("compat=%v: invalid UTF-8: %q", compat, out)
				}
				if replaced != tc.repl {
					t.Errorf("compat=%v: replaced = %v, want %v", compat, replaced, tc.repl)
				}
				if bytes.ContainsAny(out, "\u2028\u2029") {
					t.Errorf("compat=%v: raw U+2028/U+2029 in %q", compat, out)
				}
				for _, c := range out {
					if c < 0x20 {
						t.Fatalf("compat=%v: raw control byte %#x in %q", compat, c, out)
					}
				}
				got := decode(t, out)
				for _, key := range []string{"short_message", "_app_name", "host", "_group"} {
					if got[key] != tc.want {
						t.Errorf("compat=%v: %s = %q, want %q", compat, key, got[key], tc.want)
					}
				}
				if compat {
					if len(got) != 5 {
						t.Errorf("compat record has %d fields, want 5: %s", len(got), out)
					}
					continue
				}
				for key, prefix := range map[string]string{"_app": "a", "_procid": "p", "_msgid": "m", "_hostname": "h"} {
					if got[key] != prefix+tc.want {
						t.Errorf("%s = %q, want %q", key, got[key], prefix+tc.want)
					}
				}
				checkFieldNames(t, got)
			}
		})
	}
}

var gelfFieldName = regexp.MustCompile(`^[\w\.\-]*$`)

func checkFieldNames(t *testing.T, rec map[string]any) {
	t.Helper()
	for k := range rec {
		if !gelfFieldName.MatchString(k) {
			t.Errorf("field name %q does not match %s", k, gelfFieldName)
		}
		if k == "_id" {
			t.Errorf("reserved field _id emitted")
		}
	}
}

func TestAppendStructuredDataNames(t *testing.T) {
	m := &Message{StructuredData: []SDElement{
		{ID: "a@1", Params: []SDParam{{Name: "x", Value: "first"}, {Name: "b c", Value: "v1"}}},
		{ID: "a_1", Params: []SDParam{{Name: "x", Value: "duplicate name"}}},
		{ID: "id", Params: []SDParam{{Name: "", Value: "empty name"}}},
		{ID: "\xff\"}", Params: []SDParam{{Name: "ü", Value: "non-ascii"}}},
		{ID: "empty"},
	}}
	out, _ := (&Encoder{}).Append(nil, m)
	got := decode(t, out)
	want := map[string]any{
		"_sd_a_1_x": "first", "_sd_a_1_b_c": "v1", "_sd_id_": "empty name", "_sd_______": "non-ascii",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (record %s)", k, got[k], v, out)
		}
	}
	if n := bytes.Count(out, []byte(`"_sd_a_1_x"`)); n != 1 {
		t.Errorf("_sd_a_1_x appears %d times, want once: %s", n, out)
	}
	checkFieldNames(t, got)
}

// TestAppendManyStructuredData goes past the names the writer keeps on the
// stack, duplicates included.
func TestAppendManyStructuredData(t *testing.T) {
	var params []SDParam
	for i := range 40 {
		params = append(params, SDParam{Name: "p" + string(rune('A'+i%20)), Value: "v"})
	}
	out, _ := (&Encoder{}).Append(nil, &Message{StructuredData: []SDElement{{ID: "e", Params: params}}})
	got := decode(t, out)
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "_sd_") {
			n++
		}
	}
	if n != 20 {
		t.Errorf("%d _sd_ fields, want 20", n)
	}
	if c := bytes.Count(out, []byte(`"_sd_e_pA"`)); c != 1 {
		t.Errorf("_sd_e_pA appears %d times, want once", c)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	enc := Encoder{Hostname: "logviewer-1", Group: "lr"}
	m := fullMessage()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = enc.Append(buf[:0], m)
	})
	if allocs != 0 {
		t.Errorf("Append with a large enough buffer: %v allocations, want 0", allocs)
	}
}

// decode unmarshals one JSON object, numbers kept as written.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if d.More() {
		t.Fatalf("trailing data after the object: %s", b)
	}
	return m
}

func BenchmarkAppend(b *testing.B) {
	m := fullMessage()
	m.Text = []byte("GET /api/v1/items?id=42 200 12ms user=alice agent=curl/8.0 from python logging handler")
	for _, enc := range []Encoder{{Hostname: "logviewer-1", Group: "lr"}, {Hostname: "logviewer-1", Group: "lr", Compat: true}} {
		name := "gelf"
		if enc.Compat {
			name = "compat"
		}
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(m.Text)))
			for b.Loop() {
				buf, _ = enc.Append(buf[:0], m)
			}
		})
	}
}
