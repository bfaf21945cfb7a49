// Package ingest receives syslog: TCP and UDP listeners on one port, RFC 6587
// framing (octet counting and LF/CRLF/NUL-terminated lines, told apart per
// frame), RFC 5424/3164/header-less parsing, and peer names by cached reverse
// DNS. Every message becomes a GELF record (package transform) published on
// the channel of its sending host.
//
// GELFServer receives GELF 1.1 as Docker's gelf log driver and graypy send
// it: UDP datagrams of plain, gzip or zlib JSON or chunks of one
// (gelf_chunk.go), and NUL-delimited JSON over TCP. A record is published
// with its own fields, completed where GELF requires (gelf_decode.go); one
// that cannot be is counted by reason in the dropped metric and logged at
// most once a second.
//
// One goroutine serves each TCP connection and one reads UDP; no goroutine is
// started per message, and each of them reuses its buffers. A bad message is
// never an error: it is counted, logged at debug and published as well as it
// can be; nothing a client sends is dropped silently.
package ingest
