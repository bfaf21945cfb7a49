//go:build !linux

package stream

import "net"

// limitUnsent does nothing where TCP_NOTSENT_LOWAT is not known to work.
func limitUnsent(net.Conn, int) error { return nil }
