package publish

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestAnnotateJSON(t *testing.T) {
	tests := []struct {
		name, id, channel, gelf, want string
	}{
		{"members", "1-2", "web", `{"version":"1.1","level":6}`,
			`{"_event_id":"1-2","_channel":"web","version":"1.1","level":6}`},
		{"empty object", "1-2", "web", `{}`, `{"_event_id":"1-2","_channel":"web"}`},
		{"empty object with spaces", "1-2", "web", " { \n} ", `{"_event_id":"1-2","_channel":"web"}`},
		{"leading space", "1-2", "web", ` {"a":1}`, `{"_event_id":"1-2","_channel":"web","a":1}`},
		{"space after brace", "1-2", "web", `{ "a":1}`, `{"_event_id":"1-2","_channel":"web", "a":1}`},
		{"escaped channel", `i"d`, "a\\b\n\x01", `{"a":1}`,
			`{"_event_id":"i\"d","_channel":"a\\b\n\u0001","a":1}`},
		{"invalid UTF-8 channel", "1-2", "caf\xe9", `{}`, "{\"_event_id\":\"1-2\",\"_channel\":\"caf\ufffd\"}"},
		{"unicode channel", "1-2", "café\u2028", `{}`, `{"_event_id":"1-2","_channel":"café\u2028"}`},
		{"not an object", "1-2", "web", `[1]`, `{"_event_id":"1-2","_channel":"web"}`},
		{"empty input", "1-2", "web", ``, `{"_event_id":"1-2","_channel":"web"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AnnotateJSON([]byte("prefix:"), tc.id, tc.channel, []byte(tc.gelf))
			if string(got) != "prefix:"+tc.want {
				t.Errorf("got  %s\nwant prefix:%s", got, tc.want)
			}
			if !json.Valid(got[len("prefix:"):]) {
				t.Errorf("invalid JSON: %s", got)
			}
		})
	}
}

func TestAnnotateJSONRoundTrip(t *testing.T) {
	ids := []string{"1700000000000-1", "x\"y"}
	channels := []string{"web-1", "a\tb", "\x00\x1f\x7f", "日本", "bad\xff\xfe"}
	for _, id := range ids {
		for _, ch := range channels {
			out := AnnotateJSON(nil, id, ch, []byte(`{"short_message":"hi"}`))
			var obj struct {
				ID      string `json:"_event_id"`
				Channel string `json:"_channel"`
				Msg     string `json:"short_message"`
			}
			if err := json.Unmarshal(out, &obj); err != nil {
				t.Fatalf("id %q channel %q: %s: %v", id, ch, out, err)
			}
			wantCh := ch
			if ch == "bad\xff\xfe" {
				wantCh = "bad\ufffd\ufffd"
			}
			if obj.ID != id || obj.Channel != wantCh || obj.Msg != "hi" {
				t.Errorf("id %q channel %q: decoded %+v", id, ch, obj)
			}
		}
	}
}

func TestAnnotateJSONAllocs(t *testing.T) {
	gelf := []byte(`{"version":"1.1","host":"h","short_message":"a log line of ordinary length","level":6}`)
	dst := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AnnotateJSON(dst[:0], "1700000000000-123", "web-1", gelf)
	})
	if allocs != 0 {
		t.Errorf("AnnotateJSON into a large enough buffer allocates %v times", allocs)
	}
}

func TestEventIDs(t *testing.T) {
	tests := []struct {
		id    string
		epoch int64
		seq   uint64
		ok    bool
	}{
		{"1700000000000-1", 1700000000000, 1, true},
		{"0-0", 0, 0, true},
		{"1-18446744073709551615", 1, 18446744073709551615, true},
		{"1-18446744073709551616", 0, 0, false},
		{"1700000000000", 0, 0, false},
		{"-1", 0, 0, false},
		{"1-", 0, 0, false},
		{"1-+2", 0, 0, false},
		{"1--2", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"a-1", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			epoch, seq, ok := parseID(tc.id)
			if ok != tc.ok || epoch != tc.epoch || seq != tc.seq {
				t.Errorf("parseID(%q) = %d, %d, %v; want %d, %d, %v", tc.id, epoch, seq, ok, tc.epoch, tc.seq, tc.ok)
			}
			if ok && formatID(epoch, seq) != tc.id {
				t.Errorf("formatID(%d, %d) = %q, want %q", epoch, seq, formatID(epoch, seq), tc.id)
			}
		})
	}
}

func TestEventRecord(t *testing.T) {
	cases := []struct {
		name    string
		id      position
		channel string
		gelf    string
		event   string
	}{
		{"plain", position{1, 2}, "web", `{"short_message":"x"}`,
			"id: 1-2\ndata: {\"_event_id\":\"1-2\",\"_channel\":\"web\",\"short_message\":\"x\"}\n\n"},
		{"white space with newlines", position{1, 3}, "web", "{\n \"a\": 1,\r\n \"b\": \"two\\nlines\"\n}",
			"id: 1-3\ndata: {\"_event_id\":\"1-3\",\"_channel\":\"web\",  \"a\": 1,   \"b\": \"two\\nlines\" }\n\n"},
		{"empty object", position{1, 4}, "db", `{}`,
			"id: 1-4\ndata: {\"_event_id\":\"1-4\",\"_channel\":\"db\"}\n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gelf := []byte(tc.gelf)
			rec := eventRecord(tc.id.appendTo(nil), tc.channel, members(gelf))
			clear(gelf) // the record keeps a copy
			event, js := rec.SSE, rec.JSON
			if string(event) != tc.event {
				t.Fatalf("event %q, want %q", event, tc.event)
			}
			if rec.ID != tc.id.String() || rec.Channel != tc.channel {
				t.Errorf("ID %q channel %q, want %q %q", rec.ID, rec.Channel, tc.id, tc.channel)
			}
			if want := strings.TrimSuffix(strings.TrimPrefix(tc.event, "id: "+tc.id.String()+"\ndata: "), "\n\n"); string(js) != want {
				t.Errorf("json %q, want %q", js, want)
			}
			if !json.Valid(js) {
				t.Errorf("json %q is not valid", js)
			}
			if cap(js) != len(js) {
				t.Errorf("json has room past its end (cap %d, len %d): an append would write into the event", cap(js), len(js))
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"{}", "{}"},
		{"\n", " "},
		{"{\r\n\"a\":\n1\r}", "{  \"a\": 1 }"},
		{"\n\n\r\r", "    "},
	} {
		b := []byte(tc.in)
		oneLine(b)
		if string(b) != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, b, tc.want)
		}
	}
}

func BenchmarkEventRecord(b *testing.B) {
	b.SetBytes(int64(len(benchGELF)))
	b.ReportAllocs()
	for b.Loop() {
		eventRecord([]byte("1764000000000-123456"), "web-1", members(benchGELF))
	}
}

// A stream node's records carry their SSE event, one line of JSON, with
// the JSON a part of it.
func TestBatchRecordEvent(t *testing.T) {
	for _, tc := range []struct{ gelf, json string }{
		{"{\"a\":1,\n\"b\":2}", `{"_event_id":"5-1","_channel":"web","a":1, "b":2}`},
		{`{}`, `{"_event_id":"5-1","_channel":"web"}`},
	} {
		rec := batchRecord("web", position{ms: 5, seq: 1}, tc.gelf)
		if string(rec.JSON) != tc.json || !json.Valid(rec.JSON) || cap(rec.JSON) != len(rec.JSON) {
			t.Errorf("%q: JSON %q, want %q", tc.gelf, rec.JSON, tc.json)
		}
		if want := "id: 5-1\ndata: " + tc.json + "\n\n"; string(rec.SSE) != want || rec.ID != "5-1" {
			t.Errorf("%q: event %q, want %q", tc.gelf, rec.SSE, want)
		}
	}
}

// TestDecimalCounter: the counter spells every number it passes, with its
// prefix, across the carries that add a digit.
func TestDecimalCounter(t *testing.T) {
	for _, start := range []uint64{0, 7, 98, 999, 1_000_000 - 3, math.MaxUint32} {
		c := newDecimalCounter("1764620000-", start)
		for n := start + 1; n <= start+25; n++ {
			if got, want := string(c.next()), "1764620000-"+strconv.FormatUint(n, 10); got != want {
				t.Fatalf("from %d: got %q, want %q", start, got, want)
			}
		}
	}
}
