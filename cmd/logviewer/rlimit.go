package main

import (
	"fmt"
	"syscall"
)

// fdReserveShare says what the syslog connections leave to everything else when
// the file limit is small: listeners, HTTP clients and /healthz, Redis,
// files. Syslog connections get at most half the limit.
const fdReserveShare = 2

// raiseFileLimit raises the soft limit on open files to the hard limit and
// returns the limit now in force.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return lim.Cur, fmt.Errorf("raise file limit from %d to %d: %w", lim.Cur, lim.Max, err)
		}
		lim = want
	}
	return lim.Cur, nil
}

// connectionBound is the syslog connection bound that fits the file limit:
// the configured one, or half the limit when that is smaller, so HTTP and
// the health check keep descriptors while syslog senders are at theirs.
func connectionBound(configured int, fileLimit uint64) int {
	fit := fileLimit / fdReserveShare
	if fit < uint64(configured) {
		return max(int(fit), 1)
	}
	return configured
}
