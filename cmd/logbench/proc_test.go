package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name     string
		stat     string
		wantName string
		wantCPU  uint64
		wantErr  bool
	}{
		{name: "plain", stat: "4242 (logviewer) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 9 0 100 0 0",
			wantName: "logviewer", wantCPU: 287},
		{name: "name with spaces and parens", stat: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 0 0",
			wantName: "a (b) c", wantCPU: 11},
		{name: "short", stat: "7 (x) R 1 2", wantErr: true},
		{name: "no name", stat: "7 x R 1", wantErr: true},
		{name: "bad number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 y 6 0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, cpu, err := parseStat([]byte(tc.stat))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if name != tc.wantName || cpu != tc.wantCPU {
				t.Errorf("parseStat = %q, %d; want %q, %d", name, cpu, tc.wantName, tc.wantCPU)
			}
		})
	}
}

func TestReadProcAt(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "99")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stat", "99 (rsyslogd) S 1 99 99 0 -1 0 0 0 0 0 100 50 0 0 20 0 1 0 1 0 0\n")
	write("status", "Name:\trsyslogd\nVmPeak:\t  9000 kB\nVmHWM:\t    4096 kB\nVmRSS:\t    2048 kB\n")
	s, err := readProcAt(root, 99)
	if err != nil {
		t.Fatal(err)
	}
	want := procSample{Name: "rsyslogd", CPUTicks: 150, RSSKiB: 2048, HWMKiB: 4096}
	if s != want {
		t.Errorf("readProcAt = %+v, want %+v", s, want)
	}
	if _, err := readProcAt(root, 100); err == nil {
		t.Error("reading a missing process gave no error")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB == 0 || s.HWMKiB < s.RSSKiB || s.Name == "" {
		t.Errorf("own process reads as %+v", s)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	if want := string(comm[:len(comm)-1]); s.Name != want {
		t.Errorf("name %q, /proc/self/comm says %q", s.Name, want)
	}
}
