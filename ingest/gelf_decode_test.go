package ingest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func gzipped(tb testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func zlibbed(tb testing.TB, s string, level int) []byte {
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.WriteString(w, s); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

var testPeer = newPeerName("sender.example")

// testReceived is the reception time the decoder tests use.
var testReceived = time.UnixMilli(1_764_000_012_345)

func TestGELFDecode(t *testing.T) {
	const full = `{"version":"1.1","host":"web-1","short_message":"hi","full_message":"hi\nthere","timestamp":1764000000.5,"level":3,"_user":"ann"}`
	tests := []struct {
		name    string
		payload []byte
		fromApp bool
		want    string // the record; "" with reason set
		channel string // "" for the peer's
		reason  string // the drop reason, "" when published
		utf8    bool   // invalid UTF-8 replaced
	}{
		{name: "full record kept", payload: []byte(full),
			want: `{"version":"1.1","host":"web-1","short_message":"hi","full_message":"hi\nthere","timestamp":1764000000.5,"level":3,"_app_name":"sender.example","_user":"ann"}`},
		{name: "gzip", payload: gzipped(t, full),
			want: `{"version":"1.1","host":"web-1","short_message":"hi","full_message":"hi\nthere","timestamp":1764000000.5,"level":3,"_app_name":"sender.example","_user":"ann"}`},
		{name: "zlib default", payload: zlibbed(t, full, zlib.DefaultCompression),
			want: `{"version":"1.1","host":"web-1","short_message":"hi","full_message":"hi\nthere","timestamp":1764000000.5,"level":3,"_app_name":"sender.example","_user":"ann"}`},
		{name: "zlib fastest", payload: zlibbed(t, `{"short_message":"z"}`, zlib.BestSpeed),
			want: `{"version":"1.1","host":"sender.example","short_message":"z","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "zlib best", payload: zlibbed(t, `{"short_message":"z"}`, zlib.BestCompression),
			want: `{"version":"1.1","host":"sender.example","short_message":"z","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "required fields filled in", payload: []byte(`{"short_message":"bare"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"bare","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "empty host and null timestamp filled in", payload: []byte(`{"host":"","short_message":"m","timestamp":null}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"m","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "string timestamp replaced", payload: []byte(`{"short_message":"m","timestamp":"yesterday"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"m","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "numbers exactly as sent", payload: []byte(`{"short_message":"n","level":6.0,"_big":12345678901234567890123,"_e":1E+3,"_neg":-0.10}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"n","timestamp":1764000012.345,"level":6.0,"_app_name":"sender.example","_big":12345678901234567890123,"_e":1E+3,"_neg":-0.10}`},
		{name: "reserved and bus fields removed", payload: []byte(`{"short_message":"r","_id":"x","_event_id":"1-1","_channel":"evil","_app_name":"mine"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"r","timestamp":1764000012.345,"_app_name":"mine"}`},
		{name: "repeated names: the last wins", payload: []byte(`{"short_message":"a","_x":1,"_x":{"y":"}"},"short_message":"b"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"b","timestamp":1764000012.345,"_app_name":"sender.example","_x":{"y":"}"}}`},
		{name: "escaped names are names", payload: []byte(`{"short_message":"e","\u005fid":1,"\u005fchannel":"c","_\u0062":[1],"_a":"\"}\\"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"e","timestamp":1764000012.345,"_a":"\"}\\","_app_name":"sender.example","_\u0062":[1]}`},
		{name: "space removed, nested kept", payload: []byte(" {\n \"short_message\" : \"s p\" ,\t\"_obj\": { \"a\" : [ 1 , 2 ] } }\n"),
			want: `{"version":"1.1","host":"sender.example","short_message":"s p","timestamp":1764000012.345,"_app_name":"sender.example","_obj":{"a":[1,2]}}`},
		{name: "trailing NUL", payload: []byte("{\"short_message\":\"nul\"}\x00"),
			want: `{"version":"1.1","host":"sender.example","short_message":"nul","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "escapes kept", payload: []byte(`{"short_message":"q\"\\\u0001\u00e9","_k\"ey":"<&>"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"q\"\\\u0001\u00e9","timestamp":1764000012.345,"_app_name":"sender.example","_k\"ey":"<&>"}`},
		{name: "invalid UTF-8 replaced", payload: []byte("{\"short_message\":\"bad \xff byte\",\"_k\xfe\":1}"), utf8: true,
			want: `{"version":"1.1","host":"sender.example","short_message":"bad ` + "\uFFFD" + ` byte","timestamp":1764000012.345,"_app_name":"sender.example","_k` + "\uFFFD" + `":1}`},
		{name: "channel from container", fromApp: true, channel: "web_1",
			payload: []byte(`{"short_message":"c","_container_name":"web 1","_app":"api","facility":"f"}`),
			want:    `{"version":"1.1","host":"sender.example","short_message":"c","timestamp":1764000012.345,"_app":"api","_app_name":"sender.example","_container_name":"web 1","facility":"f"}`},
		{name: "channel from _app", fromApp: true, channel: "api",
			payload: []byte(`{"short_message":"c","_container_name":"","_app":"api","facility":"f"}`),
			want:    `{"version":"1.1","host":"sender.example","short_message":"c","timestamp":1764000012.345,"_app":"api","_app_name":"sender.example","_container_name":"","facility":"f"}`},
		{name: "channel from facility", fromApp: true, channel: "billing",
			payload: []byte(`{"short_message":"c","_app":7,"facility":"billing"}`),
			want:    `{"version":"1.1","host":"sender.example","short_message":"c","timestamp":1764000012.345,"_app":7,"_app_name":"sender.example","facility":"billing"}`},
		{name: "channel from app falls back to host", fromApp: true, payload: []byte(`{"short_message":"c"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"c","timestamp":1764000012.345,"_app_name":"sender.example"}`},
		{name: "container ignored when channel is the host", payload: []byte(`{"short_message":"c","_container_name":"web"}`),
			want: `{"version":"1.1","host":"sender.example","short_message":"c","timestamp":1764000012.345,"_app_name":"sender.example","_container_name":"web"}`},
		{name: "invalid json", payload: []byte(`{"short_message":`), reason: "gelf_invalid"},
		{name: "two objects", payload: []byte(`{"short_message":"a"}{"short_message":"b"}`), reason: "gelf_invalid"},
		{name: "array", payload: []byte(`[{"short_message":"a"}]`), reason: "gelf_invalid"},
		{name: "null", payload: []byte(`null`), reason: "gelf_invalid"},
		{name: "string", payload: []byte(`"short_message"`), reason: "gelf_invalid"},
		{name: "empty", payload: []byte(``), reason: "gelf_invalid"},
		{name: "no short_message", payload: []byte(`{"full_message":"x"}`), reason: "gelf_invalid"},
		{name: "empty short_message", payload: []byte(`{"short_message":""}`), reason: "gelf_invalid"},
		{name: "null short_message", payload: []byte(`{"short_message":null}`), reason: "gelf_invalid"},
		{name: "number short_message", payload: []byte(`{"short_message":5}`), reason: "gelf_invalid"},
		{name: "corrupt gzip", payload: append(gzipped(t, full)[:20:20], "garbage"...), reason: "gelf_invalid"},
		{name: "corrupt zlib", payload: []byte{0x78, 0x9c, 1, 2, 3}, reason: "gelf_invalid"},
		{name: "plain too large", payload: []byte(`{"short_message":"` + strings.Repeat("x", 1000) + `"}`), reason: "gelf_too_large"},
		{name: "gzip bomb", payload: gzipped(t, `{"short_message":"`+strings.Repeat("x", 10<<20)+`"}`), reason: "gelf_too_large"},
		{name: "zlib bomb", payload: zlibbed(t, `{"short_message":"`+strings.Repeat("x", 10<<20)+`"}`, 9), reason: "gelf_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newGELFDecoder(1000, tc.fromApp)
			// Twice: the second run reuses the decoder's readers and buffers.
			for range 2 {
				rec, channel, replaced, err := d.decode(tc.payload, testPeer, testReceived)
				if tc.reason != "" {
					if err == nil || dropReason(err) != tc.reason {
						t.Fatalf("err = %v (reason %q), want reason %s; record %s", err, dropReason(err), tc.reason, rec)
					}
					continue
				}
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if string(rec) != tc.want {
					t.Fatalf("record\n got %s\nwant %s", rec, tc.want)
				}
				wantChannel := tc.channel
				if wantChannel == "" {
					wantChannel = testPeer.channel
				}
				if channel != wantChannel || replaced != tc.utf8 {
					t.Fatalf("channel %q, replaced %v; want %q, %v", channel, replaced, wantChannel, tc.utf8)
				}
			}
		})
	}
}

// FuzzGELFDecode: whatever arrives, the decoder does not panic, and what it
// publishes is one valid JSON object in valid UTF-8 with the fields GELF
// requires and none of those the bus sets.
func FuzzGELFDecode(f *testing.F) {
	f.Add([]byte(`{"short_message":"x","_a":1}`))
	f.Add(gzipped(f, `{"short_message":"x","host":"h","timestamp":1.5}`))
	f.Add(zlibbed(f, `{"short_message":"x","_id":1}`, 6))
	d := newGELFDecoder(4096, true)
	f.Fuzz(func(t *testing.T, payload []byte) {
		rec, channel, _, err := d.decode(payload, testPeer, testReceived)
		if err != nil {
			if r := dropReason(err); r != "gelf_invalid" && r != "gelf_too_large" {
				t.Fatalf("reason %q", r)
			}
			return
		}
		if !utf8.Valid(rec) || channel == "" {
			t.Fatalf("invalid UTF-8 or no channel: %q %q", rec, channel)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(rec, &m); err != nil {
			t.Fatalf("record is not a JSON object: %v: %s", err, rec)
		}
		for _, k := range []string{"version", "host", "short_message", "timestamp", "_app_name"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("no %s in %s", k, rec)
			}
		}
		for _, k := range []string{"_id", "_event_id", "_channel"} {
			if _, ok := m[k]; ok {
				t.Fatalf("%s in %s", k, rec)
			}
		}
		var compact bytes.Buffer
		if json.Compact(&compact, rec) != nil || compact.Len() != len(rec) {
			t.Fatalf("record is not compact: %s", rec)
		}
	})
}

// BenchmarkGELFDecode measures decoding a typical Docker GELF record, plain
// and gzip-compressed as the Docker driver sends it by default.
func BenchmarkGELFDecode(b *testing.B) {
	const docker = `{"version":"1.1","host":"docker-host-1","short_message":"GET /api/v1/orders/1234 200 12.3ms",` +
		`"timestamp":1764000012.345,"level":6,"_command":"/app/server --port 8080","_container_id":"0123456789abcdef0123456789abcdef",` +
		`"_container_name":"orders-api","_created":"2026-11-30T10:00:00.000000000Z","_image_id":"sha256:0123456789abcdef",` +
		`"_image_name":"registry.local/orders-api:1.4.2","_tag":"orders-api"}`
	for _, bc := range []struct {
		name    string
		payload []byte
	}{
		{"plain", []byte(docker)},
		{"gzip", gzipped(b, docker)},
		{"zlib", zlibbed(b, docker, zlib.DefaultCompression)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newGELFDecoder(DefaultMaxMessageSize, true)
			b.SetBytes(int64(len(docker)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := d.decode(bc.payload, testPeer, testReceived); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
