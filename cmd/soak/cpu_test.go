package main

import "testing"

func TestParseBusy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{"idle and iowait left out", "cpu  10 1 5 1000 7 2 3 4 0 0\ncpu0 1 2 3 4\n", 10 + 1 + 5 + 2 + 3 + 4, false},
		{"guest not counted twice", "cpu  10 0 0 50 0 0 0 0 9 9\n", 10, false},
		{"short kernel line", "cpu  1 2 3 4\n", 6, false},
		{"no cpu line", "intr 1 2\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBusy([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseBusy = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseProcTicks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{"plain", "42 (logviewer) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 8 0 100 0 0", 175, false},
		{"name with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0", 7, false},
		{"too short", "7 (x) R 1 2", 0, true},
		{"no name", "7 x R", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcTicks([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseProcTicks = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
