package transform

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzMessage builds a Message from fuzzed values. sd holds one element a
// line: its ID, then parameter names and values, separated by tabs.
func fuzzMessage(text, peer, app, hostname, sd string, fac, sev uint8, recv, ts int64, off int32, trunc bool) *Message {
	m := &Message{
		Received: time.Unix(0, recv), Peer: peer, Facility: fac, Severity: sev,
		AppName: app, ProcID: strings.ToUpper(app), MsgID: hostname + app,
		Hostname: hostname, TLSPeer: peer, Text: []byte(text), Truncated: trunc,
	}
	if ts != 0 {
		loc := time.UTC
		if off != 0 {
			loc = time.FixedZone("", int(off))
		}
		m.Timestamp = time.Unix(ts/1e9, ts%1e9).In(loc)
	}
	if sd != "" {
		for line := range strings.SplitSeq(sd, "\n") {
			f := strings.Split(line, "\t")
			el := SDElement{ID: f[0]}
			for k := 1; k+1 < len(f); k += 2 {
				el.Params = append(el.Params, SDParam{Name: f[k], Value: f[k+1]})
			}
			m.StructuredData = append(m.StructuredData, el)
		}
	}
	return m
}

// FuzzAppend holds Encoder.Append to the straightforward reference encoder
// byte for byte, and checks that the record is one JSON object in valid
// UTF-8 whose short_message reads back as the text.
func FuzzAppend(f *testing.F) {
	f.Add("GET /api/v1/items?id=42 200 12ms", "app-host.example", "logviewer-1", "lr", "shop", "web-1",
		"origin\tip\t10.0.0.1\nzoo@123\ttiger\thungry\tx y\t\"q\"", uint8(16), uint8(4),
		int64(1795521600123456789), int64(1795521599500000000), int32(-3*3600), true, false)
	f.Add("a\"b\\c\n\t\x00\x7f\u2028\u2029\xff\xe6\x97 ação 日本 🎉", "\xc0\xaf", "", "\u2028", "", "", "",
		uint8(30), uint8(9), int64(-1500000000), int64(-62135596800000000), int32(0), false, false)
	f.Add("x", "p", "h", "g", "a", "h", "e\ta\t1\tb\t2\na_1\tx\t3\ne\ta\t4", uint8(0), uint8(0),
		int64(0), int64(1), int32(5*3600+1800), false, true)
	f.Add(strings.Repeat("0123456789abcdef", 9)+"\"", "p", "h", "g", "a", "h", "", uint8(23), uint8(7),
		int64(math.MaxInt64), int64(math.MinInt64), int32(-59), false, false)
	f.Fuzz(func(t *testing.T, text, peer, host, group, app, hostname, sd string, fac, sev uint8,
		recv, ts int64, off int32, trunc, compat bool) {
		m := fuzzMessage(text, peer, app, hostname, sd, fac, sev, recv, ts, off, trunc)
		enc := Encoder{Hostname: host, Group: group, Compat: compat}
		got, replaced := enc.Append([]byte("x"), m)
		want, wantReplaced := refAppend(&enc, []byte("x"), m)
		if !bytes.Equal(got, want) || replaced != wantReplaced {
			t.Fatalf("Append differs from the reference:\n got %q (replaced %v)\nwant %q (replaced %v)",
				got, replaced, want, wantReplaced)
		}
		// Again with the same Encoder and other times, which the text it
		// cached for the times before may or may not serve.
		m2 := *m
		for _, d := range []time.Duration{-time.Second, 1500 * time.Millisecond, 61 * time.Second, time.Millisecond} {
			m2.Received = m2.Received.Add(d)
			if !m2.Timestamp.IsZero() {
				m2.Timestamp = m2.Timestamp.Add(d)
			}
			got2, replaced2 := enc.Append(nil, &m2)
			want2, wantReplaced2 := refAppend(&enc, nil, &m2)
			if !bytes.Equal(got2, want2) || replaced2 != wantReplaced2 {
				t.Fatalf("Append after %v differs from the reference:\n got %q\nwant %q", d, got2, want2)
			}
		}
		got = got[1:]
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("not valid JSON in UTF-8: %q", got)
		}
		var rec map[string]any
		if err := json.Unmarshal(got, &rec); err != nil {
			t.Fatalf("unmarshal %q: %v", got, err)
		}
		if want, _ := expectedString(text); rec["short_message"] != want {
			t.Fatalf("short_message %q, want %q", rec["short_message"], want)
		}
	})
}

// FuzzAppendRFC3339Nano holds the _log_time formatter to
// time.Time.AppendFormat(time.RFC3339Nano) in UTC and in fixed zones.
func FuzzAppendRFC3339Nano(f *testing.F) {
	f.Add(int64(1795521599), int64(500000000), int32(-3*3600))
	f.Add(int64(-62135596800), int64(0), int32(0))
	f.Add(int64(-62167219200), int64(1), int32(-1))
	f.Add(int64(253402300799), int64(999999999), int32(59))
	f.Add(int64(253402300799), int64(120000000), int32(60))
	f.Add(int64(951782400), int64(100), int32(-(14*3600 + 30*60 + 30)))
	f.Add(int64(math.MinInt64), int64(0), int32(math.MaxInt32))
	f.Add(int64(1795521599), int64(0), int32(100*3600))
	f.Add(int64(1795521599), int64(0), int32(-100*3600+1))
	f.Add(int64(1795521599), int64(0), int32(1e9))
	f.Fuzz(func(t *testing.T, sec, nsec int64, off int32) {
		// Besides the values as they come, which are mostly far outside
		// the years 0-9999, try them folded into those years and into
		// offsets of at most a day.
		const span = maxRFC3339Sec - minRFC3339Sec + 1
		folded := minRFC3339Sec + (sec%span+span)%span
		offs := []int{int(off), int(off % (24 * 3600)), int(off%(24*60)) * 60}
		for _, s := range []int64{sec, folded} {
			for _, o := range offs {
				for _, loc := range []*time.Location{time.UTC, time.FixedZone("", o), time.FixedZone("X", o)} {
					tm := time.Unix(s, nsec).In(loc)
					want := tm.AppendFormat([]byte("x"), time.RFC3339Nano)
					if got := appendRFC3339Nano([]byte("x"), tm); !bytes.Equal(got, want) {
						t.Fatalf("appendRFC3339Nano(%v) = %q, want %q", tm, got, want)
					}
				}
			}
		}
		for _, s := range []int64{sec, folded} {
			tm := time.Unix(s, nsec)
			if got, want := AppendUnixMilli([]byte("x"), tm), refAppendUnixMilli([]byte("x"), tm); !bytes.Equal(got, want) {
				t.Fatalf("AppendUnixMilli(%v) = %q, want %q", tm, got, want)
			}
		}
	})
}

func TestDecimalLen(t *testing.T) {
	check := func(u uint64) {
		if got, want := decimalLen(u), len(strconv.FormatUint(u, 10)); got != want {
			t.Fatalf("decimalLen(%d) = %d, want %d", u, got, want)
		}
	}
	check(math.MaxUint64)
	for p := uint64(1); p <= math.MaxUint64/10; p *= 10 {
		check(p - 1)
		check(p)
		check(p + 1)
		check(p*2 - 1)
		check(p * 9)
	}
}

// TestAppendRFC3339NanoCalendar formats times from the years 0 to 9999,
// one every few days and at a different time of day each, with and
// without a fraction, in three zones.
func TestAppendRFC3339NanoCalendar(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", -(9*3600 + 30*60)), time.FixedZone("", 14*3600)}
	step := int64(86400*3 + 3607)
	if testing.Short() {
		step = 86400*29 + 3607
	}
	var got, want []byte
	for sec := int64(minRFC3339Sec); sec <= maxRFC3339Sec; sec += step {
		for _, tm := range []time.Time{time.Unix(sec, 0), time.Unix(sec+86399, 120000000)} {
			for _, loc := range zones {
				tl := tm.In(loc)
				got = appendRFC3339Nano(got[:0], tl)
				want = tl.AppendFormat(want[:0], time.RFC3339Nano)
				if !bytes.Equal(got, want) {
					t.Fatalf("appendRFC3339Nano(%v) = %s, want %s", tl, got, want)
				}
			}
		}
	}
}

// TestEncoderPartsFollowFields checks that the parts an Encoder encodes
// once follow changes of Hostname and Group, in the Encoder and in copies.
func TestEncoderPartsFollowFields(t *testing.T) {
	m := fullMessage()
	enc := Encoder{Hostname: "a", Group: "g1"}
	check := func(e *Encoder) {
		t.Helper()
		for _, compat := range []bool{false, true} {
			e.Compat = compat
			got, gotR := e.Append(nil, m)
			want, wantR := refAppend(e, nil, m)
			if !bytes.Equal(got, want) || gotR != wantR {
				t.Fatalf("Append with %+v:\n got %s\nwant %s", e, got, want)
			}
		}
		e.Compat = false
	}
	check(&enc)
	enc.Hostname = "b\xff"
	check(&enc)
	cp := enc
	cp.Group = "g2"
	check(&cp)
	check(&enc)
	var zero Encoder
	check(&zero)
}

// TestEncoderConcurrent runs Append on one Encoder from several
// goroutines from its first use on, for the race detector.
func TestEncoderConcurrent(t *testing.T) {
	enc := &Encoder{Hostname: "logviewer-1", Group: "lr"}
	m := fullMessage()
	want, _ := refAppend(enc, nil, m)
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			var buf []byte
			for range 200 {
				buf, _ = enc.Append(buf[:0], m)
				if !bytes.Equal(buf, want) {
					errs <- string(buf)
					return
				}
			}
			errs <- ""
		}()
	}
	for range 4 {
		if got := <-errs; got != "" {
			t.Fatalf("concurrent Append gave %s, want %s", got, want)
		}
	}
}

// TestEncoderTimeCache runs one Encoder over times that move on and back
// by up to a few minutes, in several zones, so that the text it caches for
// the latest second and minute is used, replaced and passed by, and holds
// its records to the reference encoder's.
func TestEncoderTimeCache(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", -3*3600), time.FixedZone("", 5*3600+1800),
		time.FixedZone("", 14*3600), time.FixedZone("", -(9*3600 + 30*60 + 30)), time.Local}
	rnd := rand.New(rand.NewPCG(1, 2))
	enc := &Encoder{Hostname: "logviewer-1", Group: "lr"}
	m := fullMessage()
	recv, ts := testReceived, m.Timestamp
	zone := zones[0]
	var got []byte
	for i := range 20000 {
		step := func(t time.Time) time.Time {
			d := time.Duration(rnd.IntN(200e3)-50e3) * time.Millisecond / 1000 * 1000
			if rnd.IntN(4) == 0 {
				d = time.Duration(rnd.IntN(10)-3) * time.Second
			}
			return t.Add(d + time.Duration(rnd.IntN(1e6)))
		}
		recv, ts = step(recv), step(ts)
		m.Received = recv
		if rnd.IntN(50) == 0 {
			zone = zones[rnd.IntN(len(zones))]
		}
		m.Timestamp = ts.In(zone)
		if i%1000 == 999 { // far away, and back
			m.Received = recv.Add(time.Duration(rnd.Int64N(1e18)))
			m.Timestamp = ts.Add(-time.Duration(rnd.Int64N(1e18)))
		}
		var r bool
		got, r = enc.Append(got[:0], m)
		want, wantR := refAppend(enc, nil, m)
		if !bytes.Equal(got, want) || r != wantR {
			t.Fatalf("step %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestAppendRFC3339NanoMillis holds the table of whole milliseconds to
// AppendFormat for each of them.
func TestAppendRFC3339NanoMillis(t *testing.T) {
	for ms := range 1000 {
		tm := time.Unix(1795521599, int64(ms)*1e6).In(time.FixedZone("", -3*3600))
		want := tm.AppendFormat(nil, time.RFC3339Nano)
		if got := appendRFC3339Nano(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("appendRFC3339Nano(%v) = %s, want %s", tm, got, want)
		}
	}
}
