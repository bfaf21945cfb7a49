package ingest

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/logviewer/logviewer/transform"
)

// testNow is the clock of the parse tests: RFC 3164 timestamps get its year.
func testNow() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC) }

// parsed is what a test expects Parse to set.
type parsed struct {
	format   transform.Format
	facility uint8
	severity uint8
	ts       string // RFC 3339 with fraction, "" for none
	hostname string
	app      string
	procid   string
	msgid    string
	sd       []transform.SDElement
	text     string
}

func gotParsed(m *transform.Message) parsed {
	p := parsed{
		format: m.Format, facility: m.Facility, severity: m.Severity,
		hostname: m.Hostname, app: m.AppName, procid: m.ProcID, msgid: m.MsgID,
		text: string(m.Text),
	}
	if !m.Timestamp.IsZero() {
		p.ts = m.Timestamp.Format(time.RFC3339Nano)
	}
	if len(m.StructuredData) > 0 {
		p.sd = m.StructuredData
	}
	return p
}

func TestParse(t *testing.T) {
	const (
		r5424 = transform.FormatRFC5424
		r3164 = transform.FormatRFC3164
		hless = transform.FormatHeaderless
		raw   = transform.FormatRaw
	)
	tests := []struct {
		name string
		in   string
		want parsed
	}{
		// Header-less, as Python's SysLogHandler sends it.
		{"python udp", "<14>hello world from python",
			parsed{format: hless, facility: 1, severity: 6, text: "hello world from python"}},
		{"python words are not a header", "<11>hello world from python",
			parsed{format: hless, facility: 1, severity: 3, text: "hello world from python"}},
		{"python nul", "<11>hello\x00",
			parsed{format: hless, facility: 1, severity: 3, text: "hello"}},
		{"tag pid", "<11>myapp[123]: boom",
			parsed{format: hless, facility: 1, severity: 3, app: "myapp", procid: "123", text: "boom"}},
		{"tag", "<134>worker: job done",
			parsed{format: hless, facility: 16, severity: 6, app: "worker", text: "job done"}},
		{"tag and nothing", "<134>worker:",
			parsed{format: hless, facility: 16, severity: 6, app: "worker", text: ""}},
		{"tag keeps later spaces", "<134>worker:  two",
			parsed{format: hless, facility: 16, severity: 6, app: "worker", text: " two"}},
		{"colon without space is text", "<14>http://example.com/ down",
			parsed{format: hless, facility: 1, severity: 6, text: "http://example.com/ down"}},
		{"empty pid is text", "<14>app[]: x",
			parsed{format: hless, facility: 1, severity: 6, text: "app[]: x"}},
		{"pid with space is text", "<14>app[1 2]: x",
			parsed{format: hless, facility: 1, severity: 6, text: "app[1 2]: x"}},
		{"unclosed pid is text", "<14>app[12: x",
			parsed{format: hless, facility: 1, severity: 6, text: "app[12: x"}},
		{"long tag is text", "<14>" + longWord(49) + ": x",
			parsed{format: hless, facility: 1, severity: 6, text: longWord(49) + ": x"}},
		{"tag of max length", "<14>" + longWord(48) + ": x",
			parsed{format: hless, facility: 1, severity: 6, app: longWord(48), text: "x"}},
		{"bom before text", "<14>\xef\xbb\xbfhi",
			parsed{format: hless, facility: 1, severity: 6, text: "hi"}},
		{"bom after tag", "<14>app: \xef\xbb\xbfhi",
			parsed{format: hless, facility: 1, severity: 6, app: "app", text: "hi"}},
		{"empty after pri", "<14>",
			parsed{format: hless, facility: 1, severity: 6, text: ""}},
		{"pri zero", "<0>kernel panic",
			parsed{format: hless, facility: 0, severity: 0, text: "kernel panic"}},
		{"pri max", "<191>x",
			parsed{format: hless, facility: 23, severity: 7, text: "x"}},
		{"trailing crlf", "<14>line\r\n",
			parsed{format: hless, facility: 1, severity: 6, text: "line"}},
		{"inner newline kept", "<14>a\nb",
			parsed{format: hless, facility: 1, severity: 6, text: "a\nb"}},
		{"control chars kept", "<14>a\x01\tb",
			parsed{format: hless, facility: 1, severity: 6, text: "a\x01\tb"}},
		{"timestamp without time", "<13>Nov 24 hello",
			parsed{format: hless, facility: 1, severity: 5, text: "Nov 24 hello"}},
		{"bad date is text", "<13>Feb 30 13:00:01 h a: m",
			parsed{format: hless, facility: 1, severity: 5, text: "Feb 30 13:00:01 h a: m"}},
		{"bad hour is text", "<13>Nov 24 25:00:01 h a: m",
			parsed{format: hless, facility: 1, severity: 5, text: "Nov 24 25:00:01 h a: m"}},
		{"broken 5424 keeps text", "<165>1 2003-10-11T22:14:15.003Z h a p m [broken",
			parsed{format: hless, facility: 20, severity: 5, text: "1 2003-10-11T22:14:15.003Z h a p m [broken"}},
		{"5424 garbage", "<165>1 garbage",
			parsed{format: hless, facility: 20, severity: 5, text: "1 garbage"}},

		// No valid PRI: the whole line, user.notice.
		{"no pri", "just a line",
			parsed{format: raw, facility: 1, severity: 5, text: "just a line"}},
		{"pri too big", "<999>x",
			parsed{format: raw, facility: 1, severity: 5, text: "<999>x"}},
		{"pri 192", "<192>x",
			parsed{format: raw, facility: 1, severity: 5, text: "<192>x"}},
		{"pri leading zero", "<01>x",
			parsed{format: raw, facility: 1, severity: 5, text: "<01>x"}},
		{"pri not digits", "<1a>x",
			parsed{format: raw, facility: 1, severity: 5, text: "<1a>x"}},
		{"pri four digits", "<0013>x",
			parsed{format: raw, facility: 1, severity: 5, text: "<0013>x"}},
		{"pri empty", "<>x",
			parsed{format: raw, facility: 1, severity: 5, text: "<>x"}},
		{"pri unclosed", "<13",
			parsed{format: raw, facility: 1, severity: 5, text: "<13"}},
		{"no pri 3164 shape", "Nov 24 13:00:01 host app: msg",
			parsed{format: raw, facility: 1, severity: 5, text: "Nov 24 13:00:01 host app: msg"}},
		{"raw bom", "\xef\xbb\xbfline",
			parsed{format: raw, facility: 1, severity: 5, text: "line"}},
		{"empty", "",
			parsed{format: raw, facility: 1, severity: 5, text: ""}},
		{"only newline", "\n",
			parsed{format: raw, facility: 1, severity: 5, text: ""}},

		// RFC 3164.
		{"logger rfc3164", "<132>Nov 24 14:05:12 vm app: msg",
			parsed{format: r3164, facility: 16, severity: 4, ts: "2026-11-24T14:05:12Z", hostname: "vm", app: "app", text: "msg"}},
		{"3164 pid", "<30>Nov  4 01:02:03 web-1 nginx[42]: GET / 200",
			parsed{format: r3164, facility: 3, severity: 6, ts: "2026-11-04T01:02:03Z", hostname: "web-1", app: "nginx", procid: "42", text: "GET / 200"}},
		{"3164 no hostname", "<13>Nov 24 13:00:01 app: msg",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", app: "app", text: "msg"}},
		{"3164 no tag", "<13>Nov 24 13:00:01 myhost msg with no tag",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", hostname: "myhost", text: "msg with no tag"}},
		{"3164 fraction", "<13>Nov 24 13:00:01.250 h a: m",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01.25Z", hostname: "h", app: "a", text: "m"}},
		{"3164 rfc3339", "<13>2025-01-02T03:04:05.5+01:00 h a: m",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2025-01-02T03:04:05.5+01:00", hostname: "h", app: "a", text: "m"}},
		{"3164 embedded newline", "<13>Nov 24 13:00:01 h a: m\nsecond line",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", hostname: "h", app: "a", text: "m\nsecond line"}},
		{"3164 control chars", "<13>Nov 24 13:00:01 h a: \x01\x02",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", hostname: "h", app: "a", text: "\x01\x02"}},
		{"3164 tag without space", "<13>Nov 24 13:00:01 h a:m",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", hostname: "h", text: "a:m"}},
		{"3164 empty message", "<13>Nov 24 13:00:01 h a:",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", hostname: "h", app: "a", text: ""}},
		{"3164 bom and invalid utf8", "<13>Nov 24 13:00:01 h a: \xef\xbb\xbfm\xff",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-11-24T13:00:01Z", hostname: "h", app: "a", text: "m\xff"}},
		{"3164 leap day", "<13>Feb 29 13:00:01 h a: m",
			parsed{format: r3164, facility: 1, severity: 5, ts: "2026-03-01T13:00:01Z", hostname: "h", app: "a", text: "m"}},

		// RFC 5424.
		{"logger rfc5424 sd", `<13>1 2026-11-24T14:05:12.057519+00:00 vm app - ID47 [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"] msg`,
			parsed{format: r5424, facility: 1, severity: 5, ts: "2026-11-24T14:05:12.057519Z", hostname: "vm", app: "app", msgid: "ID47",
				sd: []transform.SDElement{
					{ID: "timeQuality", Params: []transform.SDParam{{Name: "isSynced", Value: "0"}, {Name: "tzKnown", Value: "1"}}},
					{ID: "zoo@123", Params: []transform.SDParam{{Name: "tiger", Value: "hungry"}}},
				}, text: "msg"}},
		{"5424 rfc example", "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xef\xbb\xbfAn application event log entry...",
			parsed{format: r5424, facility: 20, severity: 5, ts: "2003-10-11T22:14:15.003Z", hostname: "mymachine.example.com", app: "evntslog", msgid: "ID47",
				sd: []transform.SDElement{{ID: "exampleSDID@32473", Params: []transform.SDParam{
					{Name: "eventID", Value: "1011"}, {Name: "eventSource", Value: "Application"}, {Name: "iut", Value: "3"}}}},
				text: "An application event log entry..."}},
		{"5424 nil fields", "<14>1 - - - - - - just text",
			parsed{format: r5424, facility: 1, severity: 6, text: "just text"}},
		{"5424 nil message", "<14>1 - - - - - -",
			parsed{format: r5424, facility: 1, severity: 6, text: ""}},
		{"5424 sd escapes", `<14>1 - - - - - [a b="x\"y\]z\\w"] m`,
			parsed{format: r5424, facility: 1, severity: 6,
				sd: []transform.SDElement{{ID: "a", Params: []transform.SDParam{{Name: "b", Value: `x"y]z\w`}}}}, text: "m"}},
		{"5424 empty element", `<14>1 - - - - - [a] m`,
			parsed{format: r5424, facility: 1, severity: 6, sd: []transform.SDElement{{ID: "a", Params: []transform.SDParam{}}}, text: "m"}},
		{"5424 offset", "<14>1 2026-11-24T12:00:00.5-03:00 h a 7 m - x",
			parsed{format: r5424, facility: 1, severity: 6, ts: "2026-11-24T12:00:00.5-03:00", hostname: "h", app: "a", procid: "7", msgid: "m", text: "x"}},
		{"5424 multiline and trailer", "<14>1 - h a - - - l1\nl2\r\n\x00",
			parsed{format: r5424, facility: 1, severity: 6, hostname: "h", app: "a", text: "l1\nl2"}},
		{"5424 invalid utf8", "<14>1 - h a - - - bad \xff utf8",
			parsed{format: r5424, facility: 1, severity: 6, hostname: "h", app: "a", text: "bad \xff utf8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Both with the fast paths and with the go-syslog machines only.
			for _, p := range []parser{{now: testNow}, {now: testNow, libraryOnly: true}} {
				var m transform.Message
				p.parse([]byte(tc.in), &m)
				got := gotParsed(&m)
				if len(tc.want.sd) > 0 {
					normalizeSD(got.sd)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("libraryOnly=%v: parse(%q)\n got %+v\nwant %+v", p.libraryOnly, tc.in, got, tc.want)
				}
			}
		})
	}
}

// normalizeSD makes empty parameter lists non-nil, as the table writes them.
func normalizeSD(sd []transform.SDElement) {
	for i := range sd {
		if sd[i].Params == nil {
			sd[i].Params = []transform.SDParam{}
		}
	}
}

func longWord(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// TestParseReuse checks that a reused Message carries nothing over from the
// message before, and that its structured data keeps its capacity.
func TestParseReuse(t *testing.T) {
	var m transform.Message
	parse([]byte(`<14>1 2026-11-24T12:00:00Z h a 1 id [x@1 a="1" b="2"][y@1 c="3"] first`), &m, testNow)
	if len(m.StructuredData) != 2 {
		t.Fatalf("first message: structured data %+v, want 2 elements", m.StructuredData)
	}
	sdCap := cap(m.StructuredData)

	parse([]byte(`<14>1 - - - - - [z@1 d="4"] second`), &m, testNow)
	want := []transform.SDElement{{ID: "z@1", Params: []transform.SDParam{{Name: "d", Value: "4"}}}}
	if !reflect.DeepEqual(m.StructuredData, want) {
		t.Errorf("second message: structured data %+v, want %+v", m.StructuredData, want)
	}
	if cap(m.StructuredData) != sdCap {
		t.Errorf("structured data capacity %d, want the reused %d", cap(m.StructuredData), sdCap)
	}

	parse([]byte("<11>third"), &m, testNow)
	got := gotParsed(&m)
	if wantP := (parsed{format: transform.FormatHeaderless, facility: 1, severity: 3, text: "third"}); !reflect.DeepEqual(got, wantP) {
		t.Errorf("third message: got %+v, want %+v", got, wantP)
	}
}

// TestParseCurrentYear checks that RFC 3164 timestamps take the year of the
// clock, and that Parse uses the real one.
func TestParseCurrentYear(t *testing.T) {
	frame := []byte("<13>Jun 15 10:00:00 h a: m")
	for _, year := range []int{2024, 2031} {
		var m transform.Message
		parse(frame, &m, func() time.Time { return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC) })
		if want := time.Date(year, 6, 15, 10, 0, 0, 0, time.UTC); !m.Timestamp.Equal(want) {
			t.Errorf("clock in %d: timestamp %v, want %v", year, m.Timestamp, want)
		}
	}
	var m transform.Message
	before := time.Now().UTC().Year()
	Parse(frame, &m)
	after := time.Now().UTC().Year()
	if y := m.Timestamp.Year(); y != before && y != after {
		t.Errorf("Parse: year %d, want the current year %d", y, before)
	}
}

// TestParseAliasesFrame checks that the text points into the frame instead
// of being copied, for each format.
func TestParseAliasesFrame(t *testing.T) {
	for _, in := range []string{
		"<14>hello",
		"<14>app[1]: hello",
		"<13>Nov 24 13:00:01 h a: hello",
		"<14>1 - h a - - - hello",
		"hello",
	} {
		t.Run(in, func(t *testing.T) {
			frame := []byte(in)
			var m transform.Message
			parse(frame, &m, testNow)
			if string(m.Text) != "hello" {
				t.Fatalf("text %q, want %q", m.Text, "hello")
			}
			if &m.Text[0] != &frame[len(frame)-len("hello")] {
				t.Errorf("text was copied, want it to alias the frame")
			}
		})
	}
}

// TestFastPathsMatchLibrary compares the hand-written header parsers with
// the go-syslog machines on many generated timestamps and headers, valid and
// not, with the edge values each field has.
func TestFastPathsMatchLibrary(t *testing.T) {
	// Each field has values the grammar allows and values it does not; a
	// frame mostly gets allowed ones, so all outcomes are reached.
	type values struct{ ok, bad []string }
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(v values) string {
		if len(v.bad) > 0 && r.IntN(12) == 0 {
			return v.bad[r.IntN(len(v.bad))]
		}
		return v.ok[r.IntN(len(v.ok))]
	}
	years := values{[]string{"2024", "2025", "2000", "1900", "0000", "9999"}, []string{"202", "20245"}}
	months := values{[]string{"01", "02", "04", "09", "12"}, []string{"00", "13", "1", "2a"}}
	days := values{[]string{"01", "09", "28", "29", "30", "31"}, []string{"00", "32", "1"}}
	hours := values{[]string{"00", "09", "23"}, []string{"24", "7"}}
	minsecs := values{[]string{"00", "59"}, []string{"60", "5"}}
	fracs := values{[]string{"", ".1", ".123456"}, []string{".1234567", ".", ".12a"}}
	zones := values{[]string{"Z", "+00:00", "-00:00", "+05:30", "-12:00", "+23:59"}, []string{"z", "+24:00", "+05:60", "+0530", "+05", ""}}
	seps := values{[]string{"T"}, []string{"t", " "}}
	stampMonths := values{[]string{"Jan", "Feb", "Apr", "Nov", "Dec"}, []string{"nov", "Foo"}}
	stampDays := values{[]string{" 1", " 9", "10", "28", "29", "30", "31"}, []string{"32", "01", "1", " 0", "  1"}}
	tails := values{[]string{" h a: m", "  h  a[1]:  m", " h", " ho:st a: m", " -", " "}, []string{"", "x h a: m"}}
	sds := values{[]string{"-", `[a b="1"]`, `[b@1 z="2" a="1"][a@1 x=""]`, `[a b="x\"y\]z\\w"]`, `[a b="é"]`, `[a]`},
		[]string{`[a b="\q"]`, `[a b="1" b="2"]`, `[a b="1"][a c="2"]`, `[a  b="1"]`, "[a b=\"\xff\"]", `[]`, `[a b=1]`, `[a b="]"]`}}
	names := values{[]string{"-", "h", "host.example"}, []string{"x y", "\x7f", strings.Repeat("a", 49)}}

	var frames []string
	for range 4000 {
		ts := pick(years) + "-" + pick(months) + "-" + pick(days) + pick(seps) +
			pick(hours) + ":" + pick(minsecs) + ":" + pick(minsecs) + pick(fracs) + pick(zones)
		if r.IntN(8) == 0 {
			ts = "-"
		}
		frames = append(frames,
			"<14>1 "+ts+" "+pick(names)+" "+pick(names)+" "+pick(names)+" "+pick(names)+" "+pick(sds)+pick(tails),
			"<13>"+ts+pick(tails),
			"<13>"+pick(stampMonths)+" "+pick(stampDays)+" "+pick(hours)+":"+pick(minsecs)+":"+pick(minsecs)+pick(fracs)+pick(tails),
		)
	}
	mismatches := 0
	formats := map[transform.Format]int{}
	fastHits := 0 // frames the fast paths took themselves
	for _, f := range frames {
		var fast, lib transform.Message
		parser{now: testNow}.parse([]byte(f), &fast)
		parser{now: testNow, libraryOnly: true}.parse([]byte(f), &lib)
		formats[fast.Format]++
		if b := []byte(f); strings.HasPrefix(f, "<14>1 ") && fast5424(b, 4, new(transform.Message), nil) {
			fastHits++
		} else if _, _, ok := fastStamp(b[4:]); ok {
			fastHits++
		}
		got, want := gotParsed(&fast), gotParsed(&lib)
		normalizeSD(got.sd)
		normalizeSD(want.sd)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n fast %+v\n  lib %+v", f, got, want)
			if mismatches++; mismatches > 10 {
				t.Fatal("too many mismatches")
			}
		}
	}
	// The generator must reach both outcomes of each parser.
	for _, f := range []transform.Format{transform.FormatRFC5424, transform.FormatRFC3164, transform.FormatHeaderless} {
		if formats[f] < 500 {
			t.Errorf("only %d of %d frames parsed as %v; the generated cases miss it", formats[f], len(frames), f)
		}
	}
	if fastHits < 2000 {
		t.Errorf("the fast paths took only %d frames", fastHits)
	}
	t.Logf("formats: %v; taken by the fast paths: %d", formats, fastHits)
}

// The forms real senders use take a fast path; only rare and odd ones need
// a go-syslog machine (counted as logviewer_ingest_parse_library_total).
func TestCommonFormsTakeFastPath(t *testing.T) {
	cases := []struct {
		name    string
		frame   string
		format  transform.Format
		library bool
	}{
		{"rsyslog forwarding (RSYSLOG_TraditionalForwardFormat)", "<30>Dec  1 16:46:53 web-1 nginx[812]: GET / 200", transform.FormatRFC3164, false},
		{"logger --rfc3164", "<13>Dec 11 06:07:08 web-1 root: disk almost full", transform.FormatRFC3164, false},
		{"logger (RFC 5424, with timeQuality SD)", `<13>1 2026-12-01T16:46:53.123456+00:00 web-1 root - - [timeQuality tzKnown="1" isSynced="0"] disk almost full`, transform.FormatRFC5424, false},
		{"RFC 5424 without SD", "<165>1 2026-12-01T16:46:53Z web-1 app 42 ID7 - started", transform.FormatRFC5424, false},
		{"RFC 5424, nil values", "<14>1 - - - - - - hello", transform.FormatRFC5424, false},
		{"docker rfc5424micro", "<30>1 2026-12-01T16:46:53.123456Z dockerhost web 4242 web - GET /", transform.FormatRFC5424, false},
		{"Python SysLogHandler", "<11>worker: job 7 failed\x00", transform.FormatHeaderless, false},
		{"Python, no tag", "<14>hello", transform.FormatHeaderless, false},
		{"logbench rfc3164", "<13>Nov 24 13:05:09 benchhost logbench[3]: lb r=run1 c=3 s=1", transform.FormatRFC3164, false},
		{"RFC 3339 in an RFC 3164 header", "<13>2026-12-01T16:46:53Z web-1 app: x", transform.FormatRFC3164, false},
		{"raw text", "no pri at all", transform.FormatRaw, false},
		// Odd forms the machines decide.
		{"RFC 5424, escaped SD value", `<13>1 2026-12-01T16:46:53Z h a - - [x@1 k="a\]b"] m`, transform.FormatRFC5424, false},
		// An odd form: the machine is asked, refuses the unpadded day, and
		// the line is kept whole as header-less text.
		{"RFC 3164, day not padded", "<13>Dec 1 16:46:53 web-1 app: x", transform.FormatHeaderless, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m transform.Message
			library := parse([]byte(tc.frame), &m, testNow)
			if m.Format != tc.format || library != tc.library {
				t.Errorf("parse(%q): format %v, library %v; want %v, %v", tc.frame, m.Format, library, tc.format, tc.library)
			}
		})
	}
}

// TestParseReceivedDatesByReception: an RFC 3164 timestamp (no year) takes
// the year of the reception time given, not of the clock.
func TestParseReceivedDatesByReception(t *testing.T) {
	var m transform.Message
	received := time.Date(2031, 6, 15, 12, 0, 1, 0, time.UTC)
	ParseReceived([]byte("<13>Jun 15 12:00:00 web-1 app: x"), &m, received)
	if want := time.Date(2031, 6, 15, 12, 0, 0, 0, time.UTC); !m.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", m.Timestamp, want)
	}
	ParseReceived([]byte("<13>Dec 31 23:59:59 web-1 app: x"), &m, time.Time{}) // no reception time: the clock
	if m.Timestamp.Year() != time.Now().UTC().Year() {
		t.Errorf("timestamp %v without a reception time, want this year", m.Timestamp)
	}
}

// fastStamp is readStamp with a Stamp put in year 0: whether the fast path
// takes a stamp by itself.
func fastStamp(rest []byte) (t time.Time, end int, ok bool) {
	return parser{at: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}.readStamp(rest)
}

// TestParseReusesHeader: a line whose header (host, tag, pid) is that of
// the line before shares its strings; another header gets its own, and
// every field stays right.
func TestParseReusesHeader(t *testing.T) {
	var header string
	p := parser{now: testNow, header: &header}
	var m transform.Message
	lines := []struct {
		line, host, app, pid string
		shared               bool // the header strings of the line before
	}{
		{"<13>Nov 24 11:00:00 web-1 app[7]: one", "web-1", "app", "7", false},
		{"<13>Nov 24 11:00:01 web-1 app[7]: two", "web-1", "app", "7", true},
		{"<13>Nov 24 11:00:02 web-1 app[8]: three", "web-1", "app", "8", false},
		{"<13>app[8]: four", "", "app", "8", false},
		{"<13>app[8]: five", "", "app", "8", true},
	}
	var before string
	for _, l := range lines {
		p.parse([]byte(l.line), &m)
		if m.Hostname != l.host || m.AppName != l.app || m.ProcID != l.pid {
			t.Fatalf("%q: host %q app %q pid %q, want %q %q %q", l.line, m.Hostname, m.AppName, m.ProcID, l.host, l.app, l.pid)
		}
		shared := before != "" && unsafe.StringData(m.AppName) == unsafe.StringData(before)
		if shared != l.shared {
			t.Errorf("%q: shares the strings of the line before: %v, want %v", l.line, shared, l.shared)
		}
		before = m.AppName
	}
}

// TestParseSharesZone: timestamps of one offset from one sender share a
// zone; another offset gets its own, and every time stays right.
func TestParseSharesZone(t *testing.T) {
	var zones zoneCache
	p := parser{now: testNow, zones: &zones}
	var m transform.Message
	var locs []*time.Location
	for _, tc := range []struct{ line, want string }{
		{"<14>1 2026-11-24T08:00:00.5-03:00 web-1 app 7 - - one", "2026-11-24T11:00:00.5Z"},
		{"<14>1 2026-11-24T08:00:01-03:00 web-1 app 7 - - two", "2026-11-24T11:00:01Z"},
		{"<14>1 2026-11-24T12:00:02+01:00 web-1 app 7 - - three", "2026-11-24T11:00:02Z"},
		{"<13>2026-11-24T12:00:03+01:00 web-1 app: four", "2026-11-24T11:00:03Z"},
	} {
		p.parse([]byte(tc.line), &m)
		if got := m.Timestamp.UTC().Format(time.RFC3339Nano); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.line, got, tc.want)
		}
		locs = append(locs, m.Timestamp.Location())
	}
	if locs[0] != locs[1] || locs[2] != locs[3] || locs[1] == locs[2] {
		t.Errorf("zones %p %p %p %p: want the first two shared, the last two shared, the pairs apart", locs[0], locs[1], locs[2], locs[3])
	}
}
