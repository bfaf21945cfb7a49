package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// frame is one expected result of Framer.Next.
type frame struct {
	text      string
	truncated bool
}

func (f frame) String() string {
	if f.truncated {
		return fmt.Sprintf("%q(truncated)", f.text)
	}
	return fmt.Sprintf("%q", f.text)
}

// readFrames frames everything r yields and returns the frames and the final error.
func readFrames(t testing.TB, r io.Reader, maxSize int) ([]frame, error) {
	t.Helper()
	f := NewFramer(r, maxSize)
	var got []frame
	for i := 0; ; i++ {
		if i > 1<<20 {
			t.Fatalf("framer did not end")
		}
		b, trunc, err := f.Next()
		if len(f.buf) > max(f.max+2+maxFrameStart, readFramerBuffer) {
			t.Fatalf("buffer grew to %d bytes for frames of at most %d", len(f.buf), f.max)
		}
		if err != nil {
			if b != nil || trunc {
				t.Fatalf("Next returned a frame %q with error %v", b, err)
			}
			return got, err
		}
		got = append(got, frame{string(b), trunc})
	}
}

var framingCases = []struct {
	name string
	in   string
	max  int
	want []frame
}{
	{"lf", "<13>one\n<13>two\n", 0, []frame{{"<13>one", false}, {"<13>two", false}}},
	{"crlf", "<13>one\r\n<13>two\r\n", 0, []frame{{"<13>one", false}, {"<13>two", false}}},
	{"nul python tcp", "<14>a\x00<14>b\x00<11>c\x00", 0, []frame{{"<14>a", false}, {"<14>b", false}, {"<11>c", false}}},
	{"octet counting", "7 <13>one7 <13>two", 0, []frame{{"<13>one", false}, {"<13>two", false}}},
	{"octet counted with trailing lf", "8 <13>one\n8 <13>two\n", 0, []frame{{"<13>one", false}, {"<13>two", false}}},
	{"octet count covers lf and nul", "8 a\nb\x00c\r\nd", 0, []frame{{"a\nb\x00c\r\nd", false}}},
	{
		"every framing mixed on one stream",
		"<13>lf\n9 <13>octet<13>crlf\r\n<13>nul\x0013 <13>two\nlines\n<13>last",
		0,
		[]frame{{"<13>lf", false}, {"<13>octet", false}, {"<13>crlf", false}, {"<13>nul", false}, {"<13>two\nlines", false}, {"<13>last", false}},
	},
	{"empty frames skipped", "\n\r\n\x00\x001 \n2 \r\n<13>a\n\n\n<13>b\x00", 0, []frame{{"<13>a", false}, {"<13>b", false}}},
	{"trailing cr nul lf stripped", "<13>a\r\r\x00<13>b\r\n", 0, []frame{{"<13>a", false}, {"<13>b", false}}},
	{"unterminated last line", "<13>a\n<13>tail", 0, []frame{{"<13>a", false}, {"<13>tail", false}}},
	{"eof inside octet frame", "<13>a\n20 <13>short", 0, []frame{{"<13>a", false}, {"<13>short", false}}},
	{"eof inside octet header", "<13>a\n12", 0, []frame{{"<13>a", false}, {"12", false}}},
	{"eof after octet header", "<13>a\n12 ", 0, []frame{{"<13>a", false}}},
	{"bogus count too many digits", "99999999999 x\n<13>b\n", 0, []frame{{"99999999999 x", false}, {"<13>b", false}}},
	{"ten digit count is a line", "1000000000 x\n", 0, []frame{{"1000000000 x", false}}},
	{"nine digit count is a count", "100000000 x", 0, []frame{{"x", false}}},
	{"bogus count letter", "12x\n<13>b\n", 0, []frame{{"12x", false}, {"<13>b", false}}},
	{"leading zero is a line", "05 hello\n", 0, []frame{{"05 hello", false}}},
	{"digits then lf", "12\n3 abc", 0, []frame{{"12", false}, {"abc", false}}},
	{"cr alone does not end a line", "<13>a\rb\n", 0, []frame{{"<13>a\rb", false}}},
	{"oversize lf line then normal", "0123456789ABCDEF\n<13>ok\n", 10, []frame{{"0123456789", true}, {"<13>ok", false}}},
	{"oversize crlf line then normal", "0123456789ABCDEF\r\n<13>ok\r\n", 10, []frame{{"0123456789", true}, {"<13>ok", false}}},
	{"oversize nul line then normal", "0123456789ABCDEF\x00<13>ok\x00", 10, []frame{{"0123456789", true}, {"<13>ok", false}}},
	{"oversize octet frame then normal", "16 0123456789ABCDEF6 <13>ok", 10, []frame{{"0123456789", true}, {"<13>ok", false}}},
	{"oversize octet frame then line", "16 0123456789ABCDEF<13>ok\n", 10, []frame{{"0123456789", true}, {"<13>ok", false}}},
	{"oversize line much longer than buffer", strings.Repeat("y", 200_000) + "\n<13>ok\n", 10, []frame{{"yyyyyyyyyy", true}, {"<13>ok", false}}},
	{"oversize octet much longer than buffer", "200000 " + strings.Repeat("y", 200_000) + "<13>ok\n", 10, []frame{{"yyyyyyyyyy", true}, {"<13>ok", false}}},
	{"oversize unterminated at eof", "0123456789ABCDEF", 10, []frame{{"0123456789", true}}},
	{"oversize octet cut at eof", "16 0123456789AB", 10, []frame{{"0123456789", true}}},
	{"octet count over max, short input", "16 01234", 10, []frame{{"01234", false}}},
	{"exactly max", "0123456789\n0123456789\r\n10 0123456789", 10, []frame{{"0123456789", false}, {"0123456789", false}, {"0123456789", false}}},
	{"max plus one", "0123456789A\n", 10, []frame{{"0123456789", true}}},
	{"max plus cr cr", "0123456789\r\r\n<13>ok\n", 10, []frame{{"0123456789", true}, {"<13>ok", false}}},

	// Multi-line messages: a line that does not start a frame continues the one before.
	{"python traceback nul", pyTraceback + "\x00<14>next\x00", 0, []frame{{pyTraceback, false}, {"<14>next", false}}},
	{"python traceback first then one-liners nul", pyTraceback + "\x00<14>a\x00" + pyTraceback + "\x00", 0,
		[]frame{{pyTraceback, false}, {"<14>a", false}, {pyTraceback, false}}},
	{"traceback lf", "<14>a\n" + pyTraceback + "\n<14>b\n", 0, []frame{{"<14>a", false}, {pyTraceback, false}, {"<14>b", false}}},
	{"traceback crlf", "<11>boom\r\nTraceback\r\n  File x\r\n<14>b\r\n", 0, []frame{{"<11>boom\r\nTraceback\r\n  File x", false}, {"<14>b", false}}},
	{"traceback at eof", "<11>boom\nTraceback\n  File x\n", 0, []frame{{"<11>boom\nTraceback\n  File x", false}}},
	{"blank lines inside", "<11>a\n\nThe above exception\n\nb\n<14>c\n", 0, []frame{{"<11>a\n\nThe above exception\n\nb", false}, {"<14>c", false}}},
	{"line of digits continues", "<11>a\n2 errors\n42\n<13>b\n", 0, []frame{{"<11>a\n2 errors\n42", false}, {"<13>b", false}}},
	{"lt without pri continues", "<11>a\n<html>\n< 1>\n<\n<13>b", 0, []frame{{"<11>a\n<html>\n< 1>\n<", false}, {"<13>b", false}}},
	{"octet frame after multi-line", "<11>a\nmore\n6 <13>x\n<13>y\n", 0, []frame{{"<11>a\nmore", false}, {"<13>x", false}, {"<13>y", false}}},
	{"octet frame keeps its lines", "13 <13>two\nlines", 0, []frame{{"<13>two\nlines", false}}},
	{"raw lines are not joined", "plain\nsecond\n", 0, []frame{{"plain", false}, {"second", false}}},
	{"raw line after multi-line", "<11>a\nb\n\x00raw\nraw2\n", 0, []frame{{"<11>a\nb", false}, {"raw", false}, {"raw2", false}}},
	{"oversize multi-line then normal", "<11>aaaa\nbbbbbbbbbb\ncccccccccc\n<13>ok\n", 20,
		[]frame{{"<11>aaaa\nbbbbbbbbbb", true}, {"<13>ok", false}}},
	{"oversize multi-line then nul", "<11>aaaa\nbbbbbbbbbb\ncccccccccc\x00<13>ok\n", 20,
		[]frame{{"<11>aaaa\nbbbbbbbbbb", true}, {"<13>ok", false}}},
}

// pyTraceback is what Python's logger.exception sends, PRI included.
const pyTraceback = "<11>payment failed\nTraceback (most recent call last):\n" +
	"  File \"/app/pay.py\", line 7, in <module>\n    d[\"missing\"]\nKeyError: 'missing'"

// twoPartReader yields a then b, as two separate reads.
func twoPartReader(in string, i int) io.Reader {
	return io.MultiReader(strings.NewReader(in[:i]), strings.NewReader(in[i:]))
}

func TestFramer(t *testing.T) {
	for _, tc := range framingCases {
		t.Run(tc.name, func(t *testing.T) {
			readers := map[string]func() io.Reader{
				"whole":         func() io.Reader { return strings.NewReader(tc.in) },
				"one byte":      func() io.Reader { return iotest.OneByteReader(strings.NewReader(tc.in)) },
				"data with eof": func() io.Reader { return iotest.DataErrReader(strings.NewReader(tc.in)) },
				"half":          func() io.Reader { return iotest.HalfReader(strings.NewReader(tc.in)) },
			}
			for rname, mk := range readers {
				got, err := readFrames(t, mk(), tc.max)
				if err != io.EOF {
					t.Errorf("%s: final error %v, want io.EOF", rname, err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s:\n got %v\nwant %v", rname, got, tc.want)
				}
			}
		})
	}
}

// TestFramerSplitEverywhere feeds every case in two reads split at every
// byte boundary: framing must not depend on how the bytes arrive.
func TestFramerSplitEverywhere(t *testing.T) {
	for _, tc := range framingCases {
		if len(tc.in) > 1000 {
			continue // the long cases are covered by the one-byte reader
		}
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i <= len(tc.in); i++ {
				got, err := readFrames(t, twoPartReader(tc.in, i), tc.max)
				if err != io.EOF || !slices.Equal(got, tc.want) {
					t.Fatalf("split at %d: got %v (%v), want %v", i, got, err, tc.want)
				}
			}
		})
	}
}

// TestFramerReadError: bytes read before an error are framed, then the error
// is returned.
func TestFramerReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("<13>a\n<13>partial"), iotest.ErrReader(boom))
	got, err := readFrames(t, r, 0)
	want := []frame{{"<13>a", false}, {"<13>partial", false}}
	if !errors.Is(err, boom) || !slices.Equal(got, want) {
		t.Fatalf("got %v (%v), want %v (%v)", got, err, want, boom)
	}
}

// TestFramerNoProgress: a reader that returns nothing forever ends framing.
func TestFramerNoProgress(t *testing.T) {
	_, err := readFrames(t, emptyReader{}, 0)
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestFramerBuffer: the buffer grows for big frames up to the limit only and
// BytesRead counts the input.
func TestFramerBuffer(t *testing.T) {
	const maxSize = 300_000
	in := "<13>" + strings.Repeat("z", 250_000) + "\n<14>" + strings.Repeat("q", 400_000) + "\n<13>end\n"
	f := NewFramer(iotest.HalfReader(strings.NewReader(in)), maxSize)
	var got []int
	for {
		b, _, err := f.Next()
		if err != nil {
			break
		}
		got = append(got, len(b))
		if len(f.buf) > maxSize+2+maxFrameStart {
			t.Fatalf("buffer grew to %d, beyond max+2+%d", len(f.buf), maxFrameStart)
		}
	}
	if want := []int{250_004, maxSize, 7}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frame sizes %v, want %v", got, want)
	}
	if f.BytesRead() != int64(len(in)) {
		t.Fatalf("BytesRead = %d, want %d", f.BytesRead(), len(in))
	}
}

// TestFramerAllocations: the steady state allocates nothing per frame.
func TestFramerAllocations(t *testing.T) {
	chunk := []byte("<13>Nov 24 13:53:32 host app[1]: hello\n32 <14>1 - - - - - - octet counted\x00<14>nul\x00")
	r := &repeatReader{data: chunk}
	f := NewFramer(r, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := f.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame, want 0", allocs)
	}
}

// repeatReader yields data over and over, in reads of up to chunk bytes
// (4 KiB when 0).
type repeatReader struct {
	data  []byte
	off   int
	chunk int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	chunk := r.chunk
	if chunk == 0 {
		chunk = 4096
	}
	n := 0
	for n < len(p) && n < chunk {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func FuzzFrame(f *testing.F) {
	for _, tc := range framingCases {
		if len(tc.in) < 1000 {
			f.Add([]byte(tc.in), uint8(tc.max))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, maxByte uint8) {
		maxSize := int(maxByte) // 0: the default
		whole, err := readFrames(t, bytes.NewReader(in), maxSize)
		if err != io.EOF {
			t.Fatalf("final error %v", err)
		}
		limit := maxSize
		if limit == 0 {
			limit = DefaultMaxMessageSize
		}
		total := 0
		for _, fr := range whole {
			if len(fr.text) == 0 || len(fr.text) > limit {
				t.Fatalf("frame of %d bytes, want 1..%d", len(fr.text), limit)
			}
			if !bytes.Contains(in, []byte(fr.text)) {
				t.Fatalf("frame %q is not part of the input", fr.text)
			}
			if c := fr.text[len(fr.text)-1]; !fr.truncated && (c == 0 || c == '\r' || c == '\n') {
				t.Fatalf("frame %q keeps a trailer", fr.text)
			}
			total += len(fr.text)
		}
		if total > len(in) {
			t.Fatalf("frames hold %d bytes, input has %d", total, len(in))
		}
		// How the bytes arrive must not change the frames.
		bytewise, _ := readFrames(t, iotest.OneByteReader(bytes.NewReader(in)), maxSize)
		if !slices.Equal(whole, bytewise) {
			t.Fatalf("one-byte reads: %v, whole: %v", bytewise, whole)
		}
		if len(in) > 0 {
			half := len(in) / 2
			split, _ := readFrames(t, twoPartReader(string(in), half), maxSize)
			if !slices.Equal(whole, split) {
				t.Fatalf("split at %d: %v, whole: %v", half, split, whole)
			}
		}
	})
}

// benchTraceback is a Python exception as logger.exception sends it: one
// record of six lines.
const benchTraceback = "<11>payment failed for order 7731\nTraceback (most recent call last):\n" +
	"  File \"/srv/app/pay.py\", line 42, in charge\n    total = prices[item]\n" +
	"  File \"/srv/app/pay.py\", line 17, in lookup\nKeyError: 'missing'"

// BenchmarkFramer measures framing throughput in the steady state, one frame
// per op, reads of up to 64 KiB as from a busy socket.
func BenchmarkFramer(b *testing.B) {
	line := "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8"
	octet := "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event"
	cases := []struct {
		name   string
		frames []string
	}{
		{"lf", []string{line + "\n"}},
		{"crlf", []string{line + "\r\n"}},
		{"nul", []string{line + "\x00"}},
		{"octet", []string{fmt.Sprintf("%d %s", len(octet), octet)}},
		{"mixed", []string{line + "\n", fmt.Sprintf("%d %s", len(octet), octet), line + "\x00", line + "\r\n"}},
		{"long lines 8KiB", []string{"<14>" + strings.Repeat("k", 8<<10) + "\n"}},
		{"traceback lf", []string{benchTraceback + "\n"}},
		{"traceback nul", []string{benchTraceback + "\x00"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(strings.Join(bc.frames, ""))
			f := NewFramer(&repeatReader{data: data, chunk: 64 << 10}, 0)
			b.SetBytes(int64(len(data) / len(bc.frames)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFramerBudget: a frame that needs more buffer than the shared budget
// allows is cut there and marked truncated, the rest skipped, framing goes
// on; a Framer gives its growth back when the connection quiets down and
// when released.
func TestFramerBudget(t *testing.T) {
	big := "<14>" + strings.Repeat("b", 20_000)
	tests := []struct {
		name   string
		budget int64
		in     string
		want   []frame
	}{
		{"line within budget", 1 << 20, big + "\n<14>next\n", []frame{{big, false}, {"<14>next", false}}},
		// 4 KiB of budget lets the buffer grow from 4 to 8 KiB, not to 16.
		{"line past budget", 4 << 10, big + "\n<14>next\n", []frame{{big[:8<<10], true}, {"<14>next", false}}},
		{"octet frame past budget", 4 << 10, fmt.Sprintf("%d %s<14>next\n", len(big), big), []frame{{big[:8<<10], true}, {"<14>next", false}}},
		{"no budget at all", 0, big + "\n<14>next\n", []frame{{big, false}, {"<14>next", false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewFrameBudget(tc.budget)
			if tc.budget == 0 {
				b = nil
			}
			f := NewFramer(strings.NewReader(tc.in), 0)
			f.SetBudget(b)
			var got []frame
			for {
				fr, trunc, err := f.Next()
				if err != nil {
					break
				}
				got = append(got, frame{string(fr), trunc})
			}
			if !slices.Equal(got, tc.want) {
				var sizes, wantSizes []string
				for _, g := range got {
					sizes = append(sizes, fmt.Sprintf("%d/%v", len(g.text), g.truncated))
				}
				for _, w := range tc.want {
					wantSizes = append(wantSizes, fmt.Sprintf("%d/%v", len(w.text), w.truncated))
				}
				t.Fatalf("got frames (bytes/truncated) %v, want %v", sizes, wantSizes)
			}
			if b != nil && b.Used() > tc.budget {
				t.Fatalf("budget used %d, limit %d", b.Used(), tc.budget)
			}
			f.Release()
			if b != nil && b.Used() != 0 {
				t.Fatalf("%d bytes still taken after Release", b.Used())
			}
		})
	}
}

// TestFramerShrinksWhenQuiet: a burst grows the buffer for big reads; once
// a read comes small again, the next read (which may block for long on an
// idle connection) is made into the base buffer, and the growth is back in
// the budget.
func TestFramerShrinksWhenQuiet(t *testing.T) {
	line := "<14>" + strings.Repeat("q", 99) + "\n" // 104 bytes: 1 MiB holds whole lines
	burst := &repeatReader{data: []byte(line), chunk: 64 << 10}
	b := NewFrameBudget(1 << 20)
	var f *Framer
	offered, usedThen := -1, int64(-1)
	calls := 0
	idle := readerFunc(func(p []byte) (int, error) { // the connection goes quiet
		calls++
		if calls == 1 { // the look for a continuation line times out
			return 0, os.ErrDeadlineExceeded
		}
		offered, usedThen = len(p), b.Used()
		return 0, io.EOF
	})
	r := &switchReader{readers: []io.Reader{io.LimitReader(burst, 104*10_000), strings.NewReader(line), idle}}
	f = NewFramer(r, 0)
	f.SetBudget(b)
	f.SetContinuation(time.Millisecond, func(time.Time) error { return nil })
	peak := 0
	for {
		if _, _, err := f.Next(); err != nil {
			break
		}
		peak = max(peak, len(f.buf))
	}
	if peak != readFramerBuffer {
		t.Fatalf("buffer peaked at %d during the burst, want %d", peak, readFramerBuffer)
	}
	if offered != baseFramerBuffer || usedThen != 0 {
		t.Fatalf("the read after the quiet one got %d bytes of buffer with %d of budget used; want %d and 0",
			offered, usedThen, baseFramerBuffer)
	}
}

// readerFunc is a Read function as an io.Reader.
type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// switchReader reads each reader to its end in turn, one read at a time.
type switchReader struct{ readers []io.Reader }

func (s *switchReader) Read(p []byte) (int, error) {
	for len(s.readers) > 0 {
		n, err := s.readers[0].Read(p)
		if err == io.EOF {
			s.readers = s.readers[1:]
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
	return 0, io.EOF
}
