package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (reading it needs sysconf).
const clockTicks = 100

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	Name     string
	CPUTicks uint64 // utime + stime
	RSSKiB   uint64 // VmRSS
	HWMKiB   uint64 // VmHWM: peak resident set since the process started
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	return readProcAt("/proc", pid)
}

// readProcAt is readProc with the proc file system mounted at root.
func readProcAt(root string, pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", root, pid))
	if err != nil {
		return s, fmt.Errorf("read process %d: %w", pid, err)
	}
	s.Name, s.CPUTicks, err = parseStat(stat)
	if err != nil {
		return s, fmt.Errorf("process %d stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("%s/%d/status", root, pid))
	if err != nil {
		return s, fmt.Errorf("read process %d: %w", pid, err)
	}
	s.RSSKiB = statusKiB(status, "VmRSS:")
	s.HWMKiB = statusKiB(status, "VmHWM:")
	return s, nil
}

// parseStat returns the command name and utime+stime of a stat file. The
// name is in parentheses and may hold spaces and parentheses itself, so
// fields are counted after the last ')'.
func parseStat(stat []byte) (string, uint64, error) {
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("no command name in %q", stat)
	}
	name := string(stat[open+1 : end])
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return "", 0, fmt.Errorf("short stat %q", stat)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, fmt.Errorf("bad utime/stime %q %q", f[11], f[12])
	}
	return name, ut + st, nil
}

// statusKiB returns the value in kB of a /proc/<pid>/status field, 0 when
// absent.
func statusKiB(status []byte, field string) uint64 {
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte(field)); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
