package ingest

import (
	"testing"
	"time"

	"github.com/logviewer/logviewer/transform"
)

// benchFrames are typical lines of each kind, of about the same length.
var benchFrames = []struct {
	name  string
	frame string
}{
	{"rfc3164", "<134>Nov 24 12:00:00 web-01 myapp[1234]: GET /api/v1/items?id=42 200 12ms user=alice agent=curl/8.0"},
	{"rfc5424", `<134>1 2026-11-24T12:00:00.123456Z web-01.example.com myapp 1234 - [meta@1 req="42"] GET /api/v1/items?id=42 200 12ms user=alice`},
	{"rfc5424_nosd", "<134>1 2026-11-24T12:00:00.123456Z web-01.example.com myapp 1234 - - GET /api/v1/items?id=42 200 12ms user=alice agent=curl"},
	{"headerless", "<14>GET /api/v1/items?id=42 200 12ms user=alice agent=curl/8.0 from python logging handler"},
	{"headerless_tagged", "<14>myapp[1234]: GET /api/v1/items?id=42 200 12ms user=alice agent=curl/8.0 from python"},
	{"raw", "GET /api/v1/items?id=42 200 12ms user=alice agent=curl/8.0 a line without any priority"},
}

// BenchmarkParseTransform measures one line through Parse and the GELF
// encoder, reusing the Message and the output buffer as the server does.
func BenchmarkParseTransform(b *testing.B) {
	enc := transform.Encoder{Hostname: "logviewer-1", Group: "lr"}
	for _, bf := range benchFrames {
		b.Run(bf.name, func(b *testing.B) {
			frame := []byte(bf.frame)
			var m transform.Message
			out := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				m.Reset()
				Parse(frame, &m)
				m.Received = time.Unix(1795521600, 0)
				m.Peer = "app-host.example"
				out, _ = enc.Append(out[:0], &m)
			}
		})
	}
}

// BenchmarkParse measures Parse alone on a reused Message, with the
// reception time given as the server gives it.
func BenchmarkParse(b *testing.B) {
	received := time.Unix(1795521600, 0)
	for _, bf := range benchFrames {
		b.Run(bf.name, func(b *testing.B) {
			frame := []byte(bf.frame)
			var m transform.Message
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				m.Reset()
				ParseReceived(frame, &m, received)
			}
		})
	}
}
