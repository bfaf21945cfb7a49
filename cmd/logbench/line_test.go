package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLineFraming(t *testing.T) {
	now := time.Date(2026, 11, 24, 13, 5, 9, 0, time.UTC)
	tests := []struct {
		name      string
		kind      string
		udp       bool
		prefix    string // the line starts with this (after any octet count)
		octets    bool   // TCP octet counting
		terminal  string // last byte(s)
		noNewline bool
	}{
		{name: "headerless tcp", kind: kindHeaderless, prefix: "<14>logbench: lb r=run1 c=3 s=", terminal: "\x00"},
		{name: "headerless udp", kind: kindHeaderless, udp: true, prefix: "<14>logbench: lb r=run1 c=3 s=", terminal: "\x00"},
		{name: "rfc3164 tcp", kind: kindRFC3164, prefix: "<13>Nov 24 13:05:09 benchhost logbench[3]: lb r=run1 c=3 s=", terminal: "\n"},
		{name: "rfc3164 udp", kind: kindRFC3164, udp: true, prefix: "<13>Nov 24 13:05:09 benchhost logbench[3]: lb r=run1", noNewline: true},
		{name: "rfc5424 tcp", kind: kindRFC5424, octets: true,
			prefix: `<13>1 2026-11-24T13:05:09.000000Z benchhost logbench 3 lb [lb@32473 run="run1" conn="3"] lb r=run1 c=3 s=`, noNewline: true},
		{name: "rfc5424 udp", kind: kindRFC5424, udp: true, prefix: "<13>1 2026-11-24T13:05:09.000000Z", noNewline: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newLineBuilder(tc.kind, tc.udp, "run1", 3, 200, now)
			line := b.appendLine(nil, 1234567, 1732450000123456789)
			msg := line
			if tc.octets {
				n, rest, ok := bytes.Cut(line, []byte(" "))
				if !ok {
					t.Fatalf("no octet count in %q", line)
				}
				want, err := strconv.Atoi(string(n))
				if err != nil || want != len(rest) {
					t.Fatalf("octet count %q, message is %d bytes", n, len(rest))
				}
				msg = rest
			}
			if !strings.HasPrefix(string(msg), tc.prefix) {
				t.Errorf("line %q\nwant prefix %q", msg, tc.prefix)
			}
			if tc.terminal != "" && !strings.HasSuffix(string(msg), tc.terminal) {
				t.Errorf("line %q does not end in %q", msg, tc.terminal)
			}
			if tc.noNewline && bytes.ContainsAny(msg, "\n\x00") {
				t.Errorf("line %q holds a delimiter", msg)
			}
			if n := len(line); n < 190 || n > 210 {
				t.Errorf("line is %d bytes, want about 200", n)
			}
			m, ok := findMark(line, markNeedle("run1"))
			if !ok || m != (mark{conn: 3, seq: 1234567, sent: 1732450000123456789}) {
				t.Errorf("findMark = %+v, %v", m, ok)
			}
		})
	}
}

func TestLineSmallSizeHasNoPadding(t *testing.T) {
	b := newLineBuilder(kindRFC3164, false, "r", 1, 10, time.Now())
	line := b.appendLine(nil, 5, 42)
	if !bytes.HasSuffix(line, []byte("s=5 t=42\n")) {
		t.Errorf("line %q: want no padding below the header size", line)
	}
}

func TestAppendLineReusesBuffer(t *testing.T) {
	b := newLineBuilder(kindRFC5424, false, "r", 1, 140, time.Now())
	buf := make([]byte, 0, 4096)
	buf = b.appendLine(buf, 1, 1)
	allocs := testing.AllocsPerRun(100, func() {
		buf = b.appendLine(buf[:0], 123456, time.Now().UnixNano())
	})
	if allocs != 0 {
		t.Errorf("appendLine allocates %v times per line", allocs)
	}
}

func TestFindMark(t *testing.T) {
	needle := markNeedle("ab12")
	tests := []struct {
		name string
		data string
		want mark
		ok   bool
	}{
		{name: "gelf json", data: `{"_event_id":"1-2","short_message":"lb r=ab12 c=2 s=99 t=1700000000000000000 xyz","host":"h"}`,
			want: mark{conn: 2, seq: 99, sent: 1700000000000000000}, ok: true},
		{name: "rsyslog leading space", data: `{"short_message":" lb r=ab12 c=1 s=0 t=5"}`, want: mark{conn: 1, sent: 5}, ok: true},
		{name: "probe", data: `lb r=ab12 c=0 s=7 t=9`, want: mark{conn: 0, seq: 7, sent: 9}, ok: true},
		{name: "end of data", data: `lb r=ab12 c=4 s=1 t=2`, want: mark{conn: 4, seq: 1, sent: 2}, ok: true},
		{name: "other run", data: `lb r=ab13 c=2 s=99 t=1`},
		{name: "run prefix of another", data: `lb r=ab123 c=2 s=99 t=1`},
		{name: "no sequence", data: `lb r=ab12 c=2 t=1`},
		{name: "no time", data: `lb r=ab12 c=2 s=3`},
		{name: "empty time", data: `lb r=ab12 c=2 s=3 t=`},
		{name: "huge conn", data: `lb r=ab12 c=99999999 s=3 t=1`},
		{name: "huge time", data: `lb r=ab12 c=1 s=3 t=9999999999999999999`},
		{name: "empty", data: ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := findMark([]byte(tc.data), needle)
			if ok != tc.ok || got != tc.want {
				t.Errorf("findMark(%q) = %+v, %v; want %+v, %v", tc.data, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseNotice(t *testing.T) {
	tests := []struct {
		name string
		data string
		want notice
		ok   bool
	}{
		{name: "dropped", data: `{"dropped":1234}`, want: notice{dropped: 1234}, ok: true},
		{name: "dropped spaced", data: `{"dropped": 5}` + "\n", want: notice{dropped: 5}, ok: true},
		{name: "gap", data: `{"gap":true}`, want: notice{gap: true}, ok: true},
		{name: "record", data: `{"_event_id":"1-1","short_message":"dropped"}`},
		{name: "dropped without number", data: `{"dropped":x}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseNotice([]byte(tc.data))
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseNotice(%q) = %+v, %v; want %+v, %v", tc.data, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzFindMark checks that any record either yields no mark or a mark
// that round-trips through the line format.
func FuzzFindMark(f *testing.F) {
	f.Add([]byte(`{"short_message":"lb r=fz c=1 s=2 t=3"}`))
	f.Add([]byte(`lb r=fz c= s= t=`))
	f.Add([]byte(`lb r=fz c=1 s=18446744073709551615 t=1`))
	needle := markNeedle("fz")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := findMark(data, needle)
		if !ok {
			return
		}
		if m.conn < 0 || m.sent < 0 {
			t.Fatalf("negative field in %+v", m)
		}
		b := newLineBuilder(kindRFC3164, true, "fz", m.conn, 0, time.Now())
		again, ok := findMark(b.appendLine(nil, m.seq, m.sent), needle)
		if !ok || again != m {
			t.Fatalf("round trip of %+v gave %+v, %v", m, again, ok)
		}
	})
}

func BenchmarkAppendLine(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			lb := newLineBuilder(kind, false, "bench", 1, 140, time.Now())
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				buf = lb.appendLine(buf[:0], uint64(i), 1732450000123456789)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkHandleRecord(b *testing.B) {
	s := newSubscriber(subSSE, "", "bench", false, nil)
	rec := []byte(`{"_event_id":"1764000000000-12345","_channel":"localhost","version":"1.1","host":"h",` +
		`"short_message":"lb r=bench c=1 s=0 t=1732450000123456789 abcdefghijklmnopqrstuvwxyzabcdefghijkl",` +
		`"timestamp":1764000012.345,"level":5,"_app_name":"localhost","_group":"lr","_facility":"user","_app":"logbench"}`)
	i := bytes.Index(rec, []byte("s=0 "))
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		rec[i+2] = byte('0' + n%10) // a few distinct sequences, the rest duplicates
		s.handle(rec, 1732450000123456789+int64(n))
	}
}

// TestAppPerConn: each connection's lines name their own app.
func TestAppPerConn(t *testing.T) {
	for _, kind := range []string{kindHeaderless, kindRFC3164, kindRFC5424} {
		b := newLineBuilder(kind, false, "r", 2, 140, time.Now())
		b.appPerConn(2)
		line := string(b.appendLine(nil, 1, 0))
		if !strings.Contains(line, "logbench-2") || strings.Count(line, "logbench") != 1 {
			t.Errorf("%s: %q", kind, line)
		}
	}
}
