package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of /proc/stat and /proc/PID/stat times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSnapshot is the machine's busy time and the daemon's and this
// process's CPU time at one moment, in clock ticks: whatever else ran on
// the machine during an attack is the busy time neither of them used.
type cpuSnapshot struct {
	busy, daemon, self uint64
}

// cpuUse is CPU used over an interval, in cores (1 = one core all along).
type cpuUse struct {
	Daemon, Soak, Others float64
}

// takeCPU reads the snapshot for daemon process pid.
func takeCPU(pid int) (cpuSnapshot, error) {
	var s cpuSnapshot
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, fmt.Errorf("cpu: %w", err)
	}
	if s.busy, err = parseBusy(stat); err != nil {
		return s, err
	}
	if s.daemon, err = procTicks(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
		return s, err
	}
	if s.self, err = procTicks("/proc/self/stat"); err != nil {
		return s, err
	}
	return s, nil
}

// since returns the CPU used from s0 to s over wall seconds.
func (s cpuSnapshot) since(s0 cpuSnapshot, wall float64) cpuUse {
	if wall <= 0 {
		return cpuUse{}
	}
	per := func(a, b uint64) float64 {
		if a < b {
			return 0
		}
		return float64(a-b) / clockTicks / wall
	}
	u := cpuUse{Daemon: per(s.daemon, s0.daemon), Soak: per(s.self, s0.self)}
	u.Others = max(per(s.busy, s0.busy)-u.Daemon-u.Soak, 0)
	return u
}

// parseBusy returns the busy ticks of all CPUs from /proc/stat: every
// field of the "cpu" line but idle and iowait.
func parseBusy(stat []byte) (uint64, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, errors.New("cpu: no cpu line in /proc/stat")
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu: /proc/stat field %d: %w", i+1, err)
		}
		busy += n
	}
	return busy, nil
}

// procTicks returns utime+stime from a /proc/PID/stat file; the command
// name in parentheses may hold spaces, so fields count from the last ')'.
func procTicks(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cpu: %w", err)
	}
	return parseProcTicks(b)
}

// parseProcTicks is procTicks on the file's contents.
func parseProcTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("cpu: stat without a command name")
	}
	f := bytes.Fields(b[i+1:])
	// After the name: state(3) ... utime(14) stime(15), so indexes 11, 12.
	if len(f) < 13 {
		return 0, errors.New("cpu: stat too short")
	}
	u, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	s, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu: stat times: %w", err)
	}
	return u + s, nil
}
