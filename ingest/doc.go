// Package ingest receives syslog: TCP and UDP listeners on one port, RFC 6587
// framing (octet counting and LF/CRLF/NUL-terminated lines, told apart per
// frame), RFC 5424/3164/header-less parsing, and peer names by cached reverse
// DNS. Every message becomes a GELF record (package transform) published on
// the channel of its sending host.
//
// One goroutine serves each TCP connection and one reads UDP; no goroutine is
// started per message, and each of them reuses its buffers. A bad message is
// never an error: it is counted, logged at debug and published as well as it
// can be; nothing a client sends is dropped silently.
package ingest
