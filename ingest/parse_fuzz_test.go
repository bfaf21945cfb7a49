package ingest

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/logviewer/logviewer/transform"
)

// FuzzParse checks that whatever a client sends, Parse and the encoder give
// one valid JSON object in valid UTF-8 whose short_message is the parsed text,
// and that Parse keeps its other promises: text inside the frame, PRI in
// range, sorted structured data, the same result on a reused Message.
// The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("<14>hello world from python"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m transform.Message
		parse(frame, &m, testNow)
		if m.Facility > 23 || m.Severity > 7 {
			t.Fatalf("facility %d severity %d out of range", m.Facility, m.Severity)
		}
		if len(m.Text) > 0 && !within(m.Text, frame) {
			t.Fatalf("text %q is not part of the frame", m.Text)
		}
		if n := len(m.Text); n > 0 && (m.Text[n-1] == '\n' || m.Text[n-1] == '\r' || m.Text[n-1] == 0) {
			t.Fatalf("text %q ends with CR, LF or NUL", m.Text)
		}
		if !slices.IsSortedFunc(m.StructuredData, func(a, b transform.SDElement) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatalf("structured data not sorted: %+v", m.StructuredData)
		}
		m.Received = goldenReceived
		m.Peer = "peer"
		for _, compat := range []bool{false, true} {
			enc := transform.Encoder{Hostname: "h", Group: "lr", Compat: compat}
			out, replaced := enc.Append(nil, &m)
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("compat=%v: frame %q gives invalid JSON or UTF-8: %q", compat, frame, out)
			}
			if utf8.Valid(frame) && replaced {
				t.Fatalf("compat=%v: valid UTF-8 frame %q reported as replaced", compat, frame)
			}
			var rec map[string]any
			if err := json.Unmarshal(out, &rec); err != nil {
				t.Fatalf("unmarshal %q: %v", out, err)
			}
			if want := replaceInvalid(m.Text); rec["short_message"] != want {
				t.Fatalf("compat=%v: short_message %q, want %q", compat, rec["short_message"], want)
			}
		}

		// The fast paths agree with the go-syslog machines.
		var lib transform.Message
		parser{now: testNow, libraryOnly: true}.parse(frame, &lib)
		got, want := gotParsed(&m), gotParsed(&lib)
		normalizeSD(got.sd)
		normalizeSD(want.sd)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast paths and library differ on %q:\n fast %+v\n  lib %+v", frame, got, want)
		}

		// A reused Message gives the same result as a fresh one.
		var reused transform.Message
		parse([]byte(`<14>1 2026-11-24T12:00:00Z h a 1 id [x@1 a="1"][y@1 b="2"] before`), &reused, testNow)
		parse(frame, &reused, testNow)
		got, want = gotParsed(&reused), gotParsed(&m)
		normalizeSD(got.sd)
		normalizeSD(want.sd)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("reused message differs:\n got %+v\nwant %+v", got, want)
		}
	})
}

// replaceInvalid spells b with each invalid UTF-8 byte as U+FFFD.
func replaceInvalid(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r) // utf8.RuneError is U+FFFD
		b = b[size:]
	}
	return sb.String()
}

// within reports whether sub lies inside the memory of b.
func within(sub, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	full := b[:cap(b)]
	for i := range full {
		if &full[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	return false
}
