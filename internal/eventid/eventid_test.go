package eventid

import "testing"

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		a, b uint64
		ok   bool
	}{
		{"1764000000000-42", 1764000000000, 42, true},
		{"0-0", 0, 0, true},
		{"18446744073709551615-1", 18446744073709551615, 1, true},
		{"18446744073709551616-1", 0, 0, false}, // past 64 bits
		{"-1", 0, 0, false},
		{"1-", 0, 0, false},
		{"1", 0, 0, false},
		{"+1-2", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"1 -2", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range cases {
		a, b, ok := Parse(tc.in)
		if a != tc.a || b != tc.b || ok != tc.ok {
			t.Errorf("Parse(%q) = %d, %d, %v; want %d, %d, %v", tc.in, a, b, ok, tc.a, tc.b, tc.ok)
		}
	}
}
