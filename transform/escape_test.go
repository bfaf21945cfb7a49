package transform

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendStringEscapes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "abc", `"abc"`},
		{"quote", `a"b`, `"a\"b"`},
		{"backslash", `a\b`, `"a\\b"`},
		{"newline", "a\nb", `"a\nb"`},
		{"cr", "a\rb", `"a\rb"`},
		{"tab", "a\tb", `"a\tb"`},
		{"nul", "\x00", `"\u0000"`},
		{"escape char", "\x1b[31m", `"\u001b[31m"`},
		{"unit separator", "\x1f", `"\u001f"`},
		{"del kept", "\x7f", "\"\x7f\""},
		{"line separator", "\u2028", `"\u2028"`},
		{"paragraph separator", "\u2029", `"\u2029"`},
		{"neighbour of separators kept", "\u2027\u202a", "\"\u2027\u202a\""},
		{"invalid", "\xff", "\"\uFFFD\""},
		{"multibyte", "日本", `"日本"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := appendString(nil, tc.in)
			if string(got) != tc.want {
				t.Errorf("appendString(%q) = %s, want %s", tc.in, got, tc.want)
			}
			gotB, _ := appendString(nil, []byte(tc.in))
			if string(gotB) != tc.want {
				t.Errorf("appendString([]byte %q) = %s, want %s", tc.in, gotB, tc.want)
			}
		})
	}
}

// TestRuneLenMatchesUTF8 compares runeLen with unicode/utf8 on every
// sequence of one to three bytes and on all four-byte sequences whose last
// two bytes are taken from the interesting values.
func TestRuneLenMatchesUTF8(t *testing.T) {
	check := func(b []byte) {
		if b[0] < utf8.RuneSelf {
			return
		}
		r, size := utf8.DecodeRune(b)
		want := size
		if r == utf8.RuneError && size == 1 {
			want = 0
		}
		if got := runeLen(b); got != want {
			t.Fatalf("runeLen(% x) = %d, want %d", b, got, want)
		}
	}
	for a := 0x80; a < 0x100; a++ {
		check([]byte{byte(a)})
		for b := range 0x100 {
			check([]byte{byte(a), byte(b)})
			for c := range 0x100 {
				check([]byte{byte(a), byte(b), byte(c)})
			}
		}
	}
	edges := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff}
	for a := 0xf0; a < 0x100; a++ {
		for b := range 0x100 {
			for _, c := range edges {
				for _, d := range edges {
					check([]byte{byte(a), byte(b), c, d})
				}
			}
		}
	}
}

// expectedString is an independent spelling of what appendString must
// decode to: each invalid byte becomes one U+FFFD.
func expectedString(s string) (string, bool) {
	var b strings.Builder
	replaced := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			replaced = true
		}
		b.WriteRune(r)
		i += size
	}
	return b.String(), replaced
}

func FuzzAppendString(f *testing.F) {
	for _, tc := range hostile {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, replaced := appendString([]byte("x"), s)
		out = out[1:]
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("appendString(%q) = %q: not valid JSON in UTF-8", s, out)
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("unmarshal %q: %v", out, err)
		}
		want, wantReplaced := expectedString(s)
		if got != want || replaced != wantReplaced {
			t.Fatalf("appendString(%q) decodes to %q (replaced %v), want %q (replaced %v)", s, got, replaced, want, wantReplaced)
		}
		outB, replacedB := appendString(nil, []byte(s))
		if string(outB) != string(out) || replacedB != replaced {
			t.Fatalf("[]byte and string forms differ: %q vs %q", outB, out)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"ascii", "GET /api/v1/items?id=42 200 12ms user=alice agent=curl/8.0 from python logging handler"},
		{"escapes", "a \"quoted\" \\ path\twith\ttabs\nand lines\n and \x1b[31mcolour\x1b[0m and some more"},
		{"utf8", "ação concluída com sucesso — 日本語のログ行です, with some ascii to round it off"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.s)
			dst := make([]byte, 0, 512)
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				dst, _ = appendString(dst[:0], in)
			}
		})
	}
}

// TestLoadShort checks that loadShort packs every byte of strings of 1 to
// 16 bytes and no other, so that storeShort writes them back and
// plainShort sees a byte that needs escaping wherever it is.
func TestLoadShort(t *testing.T) {
	for n := 1; n <= 16; n++ {
		s := []byte("abcdefghijklmnop"[:n])
		x, y := loadShort(s)
		if !plainShort(x, y, n) {
			t.Errorf("loadShort(%q): plain text seen as needing escapes", s)
		}
		var d [16]byte
		storeShort(&d, n, x, y)
		if string(d[:n]) != string(s) {
			t.Errorf("storeShort(loadShort(%q)) wrote %q", s, d[:n])
		}
		for i := range n {
			for _, c := range []byte{'"', '\\', '\n', 0, 0x80, 0xff} {
				bad := append([]byte(nil), s...)
				bad[i] = c
				if x, y := loadShort(bad); plainShort(x, y, n) {
					t.Errorf("loadShort(%q): byte %d not seen", bad, i)
				}
			}
		}
	}
}
