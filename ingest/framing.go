package ingest

import (
	"bytes"
	"io"
)

// DefaultMaxMessageSize is the frame size limit used when none is given.
const DefaultMaxMessageSize = 64 << 10

const (
	// maxCountDigits is the longest octet count accepted (RFC 6587 MSG-LEN):
	// nine digits, so a count never overflows and a bogus header is found fast.
	maxCountDigits = 9
	// minFramerBuffer is the smallest read buffer; big reads amortise syscalls.
	minFramerBuffer = 64 << 10
	// termChunk is how far ahead one search for LF looks before NUL is
	// searched for too, so NUL-terminated streams are not scanned to the end
	// of the buffer for an LF on every frame.
	termChunk = 256
)

// Framer splits a syslog byte stream into frames as RFC 6587 describes,
// deciding per frame between octet counting ("<len> <msg>") and
// non-transparent framing (a message ended by LF, CRLF or NUL), so both may
// mix on one connection.
//
// Trailing NUL, CR and LF are stripped from every frame and empty frames are
// skipped. A frame longer than the maximum size is cut at it and reported as
// truncated; the rest of it is skipped up to its end (its octet count or its
// terminator) and framing goes on with the next frame. When the reader fails
// or ends, the bytes already read are still framed, an unterminated last
// message included, before the error is returned.
//
// A Framer reads through one buffer it reuses, so the steady state allocates
// nothing; a returned frame is valid until the next call to Next.
type Framer struct {
	r     io.Reader
	max   int
	limit int // the most the buffer grows to: a full-size line with CR and LF
	buf   []byte
	start int   // buf[start:end] is read but not yet framed
	end   int   // see start
	err   error // read error, returned once the buffered bytes are framed
	read  int64 // bytes read from r

	skip     int  // bytes of an oversize octet-counted frame still to discard
	skipLine bool // discarding an oversize line up to its terminator
}

// NewFramer returns a Framer reading r whose frames are at most maxSize bytes
// (DefaultMaxMessageSize when maxSize <= 0).
func NewFramer(r io.Reader, maxSize int) *Framer {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	// The buffer starts at minFramerBuffer and grows only for a frame that
	// needs it: up to a full-size line with its CR and LF.
	limit := max(maxSize+2, maxCountDigits+1, minFramerBuffer)
	return &Framer{r: r, max: maxSize, limit: limit, buf: make([]byte, minFramerBuffer)}
}

// BytesRead returns how many bytes the Framer has read from its reader.
func (f *Framer) BytesRead() int64 { return f.read }

// Next returns the next frame and whether it was cut at the maximum size.
// After the last frame it returns the reader's error (io.EOF at a clean end).
// The frame is valid until the next call.
func (f *Framer) Next() (frame []byte, truncated bool, err error) {
	for {
		if !f.discard() {
			return nil, false, f.err
		}
		if f.start == f.end && !f.fill() {
			return nil, false, f.err
		}
		if n, hdr, ok := f.octetHeader(); ok {
			frame, truncated = f.octetFrame(n, hdr)
		} else {
			frame, truncated = f.lineFrame()
		}
		frame = stripFrameEnd(frame)
		if len(frame) > f.max {
			frame, truncated = frame[:f.max], true
		}
		if len(frame) > 0 {
			return frame, truncated, nil
		}
	}
}

// fill reads once more after the unread bytes, making room first. It reports
// whether new bytes arrived; when it returns false f.err is set or the
// buffer is full.
func (f *Framer) fill() bool {
	if f.err != nil {
		return false
	}
	if f.end == len(f.buf) {
		switch {
		case f.start > 0:
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		case len(f.buf) < f.limit:
			nb := make([]byte, min(2*len(f.buf), f.limit))
			f.end = copy(nb, f.buf[f.start:f.end])
			f.start, f.buf = 0, nb
		default:
			return false // callers never need more than limit bytes
		}
	}
	// Bounded like bufio: a reader that keeps returning nothing is broken.
	for range 100 {
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		f.read += int64(n)
		if err != nil {
			f.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	f.err = io.ErrNoProgress
	return false
}

// discard drops what is left of an oversize frame. It returns false when the
// input ended first.
func (f *Framer) discard() bool {
	for f.skip > 0 {
		if f.start == f.end {
			f.start, f.end = 0, 0
			if !f.fill() {
				return false
			}
		}
		n := min(f.skip, f.end-f.start)
		f.start += n
		f.skip -= n
	}
	for f.skipLine {
		if i := indexTerminator(f.buf[f.start:f.end]); i >= 0 {
			f.start += i + 1
			f.skipLine = false
			break
		}
		f.start, f.end = 0, 0
		if !f.fill() {
			return false
		}
	}
	return true
}

// octetHeader recognises an octet-counting header at the start of the unread
// bytes: a digit 1-9, at most eight more digits, then a space. It returns the
// count and the header's length. Anything else is a non-transparent frame
// ("12x", a ten-digit number, a line that ends inside the digits).
func (f *Framer) octetHeader() (n, hdr int, ok bool) {
	c := f.buf[f.start]
	if c < '1' || c > '9' {
		return 0, 0, false
	}
	n = int(c - '0')
	for i := 1; ; i++ {
		for f.end-f.start <= i {
			if !f.fill() {
				return 0, 0, false
			}
		}
		switch c := f.buf[f.start+i]; {
		case c == ' ':
			return n, i + 1, true
		case c >= '0' && c <= '9' && i < maxCountDigits:
			n = n*10 + int(c-'0')
		default:
			return 0, 0, false
		}
	}
}

// octetFrame returns the body of an octet-counted frame of n bytes whose
// header is hdr bytes long, cut at the maximum size.
func (f *Framer) octetFrame(n, hdr int) ([]byte, bool) {
	f.start += hdr
	want := min(n, f.max)
	for f.end-f.start < want && f.fill() {
	}
	got := min(want, f.end-f.start)
	frame := f.buf[f.start : f.start+got]
	f.start += got
	if got < want {
		return frame, false // the input ended inside the frame: deliver what came
	}
	if n > f.max {
		f.skip = n - f.max
		return frame, true
	}
	return frame, false
}

// lineFrame returns a frame ended by LF or NUL (the terminator is consumed),
// or the unterminated rest when the input ends.
func (f *Framer) lineFrame() ([]byte, bool) {
	scanned := 0
	for {
		window := f.buf[f.start:f.end]
		if len(window) > f.max+2 {
			window = window[:f.max+2]
		}
		if i := indexTerminator(window[scanned:]); i >= 0 {
			frame := window[:scanned+i]
			f.start += scanned + i + 1
			return frame, false // Next cuts it if it is still too long once trimmed
		}
		scanned = len(window)
		if scanned == f.max+2 {
			// No terminator in sight: cut, and skip the rest of the line.
			f.start += scanned
			f.skipLine = true
			return window[:f.max], true
		}
		if !f.fill() {
			frame := f.buf[f.start:f.end]
			f.start = f.end
			return frame, false
		}
	}
}

// indexTerminator returns the index of the first LF or NUL in b, or -1.
func indexTerminator(b []byte) int {
	for off := 0; off < len(b); off += termChunk {
		chunk := b[off:min(off+termChunk, len(b))]
		lf := bytes.IndexByte(chunk, '\n')
		if lf >= 0 {
			chunk = chunk[:lf]
		}
		if nul := bytes.IndexByte(chunk, 0); nul >= 0 {
			return off + nul
		}
		if lf >= 0 {
			return off + lf
		}
	}
	return -1
}

// stripFrameEnd strips trailing NUL, CR and LF bytes.
func stripFrameEnd(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case 0, '\r', '\n':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}
