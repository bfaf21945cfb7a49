package ingest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// DefaultMaxMessageSize is the frame size limit used when none is given.
const DefaultMaxMessageSize = 64 << 10

const (
	// maxCountDigits is the longest octet count accepted (RFC 6587 MSG-LEN):
	// nine digits, so a count never overflows and a bogus header is found fast.
	maxCountDigits = 9
	// baseFramerBuffer is the buffer every Framer starts with and goes back
	// to when its connection quiets down: an idle connection costs this.
	baseFramerBuffer = 4 << 10
	// readFramerBuffer is how far the buffer grows for throughput alone, when
	// reads keep filling it: big reads amortise syscalls.
	readFramerBuffer = 64 << 10
	// termChunk is how far ahead one search for LF looks before NUL is
	// searched for too, so NUL-terminated streams are not scanned to the end
	// of the buffer for an LF on every frame.
	termChunk = 256
	// maxFrameStart is the most bytes after a LF needed to tell whether a
	// new frame starts there: an octet count of nine digits, a space and '<'.
	maxFrameStart = maxCountDigits + 2
)

// DefaultContinuationWait is how long a record ended by LF waits for its next
// line when no byte of that line has arrived yet.
const DefaultContinuationWait = 50 * time.Millisecond

// Framer splits a syslog byte stream into frames as RFC 6587 describes,
// deciding per frame between octet counting ("<len> <msg>") and
// non-transparent framing (a message ended by LF, CRLF or NUL), so both may
// mix on one connection.
//
// A message keeps its own line breaks. NUL always ends a frame. A LF ends a
// frame that begins with a PRI ('<' and a digit) only when the next line
// starts a new frame (a PRI, or an octet count followed by '<'), when the
// input ends, or when no byte of the next line comes within the continuation
// wait; any other line (a Python traceback's "Traceback ...", "  File ...")
// continues the message. So a multi-line message stays one frame whether it
// is ended by NUL (Python's SysLogHandler over TCP) or by LF, and whatever
// the connection sent before it. A frame that does not begin with a PRI (raw
// text) ends at every LF.
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

	budget   *FrameBudget // bytes of buffer beyond baseFramerBuffer come from it; nil: no bound
	denied   bool         // the budget refused the growth a frame needed
	lastFull bool         // the last read filled the free space: reads want a bigger buffer

	skip     int  // bytes of an oversize octet-counted frame still to discard
	skipLine bool // discarding an oversize line up to its terminator
	skipCont bool // the line being discarded may go on past a LF

	wait        time.Duration           // continuation wait; < 0: every LF ends a frame
	setDeadline func(t time.Time) error // bounds the wait; nil: reads block until data or the end
	beforeRead  func()                  // called before each read; nil: none
}

// NewFramer returns a Framer reading r whose frames are at most maxSize bytes
// (DefaultMaxMessageSize when maxSize <= 0).
func NewFramer(r io.Reader, maxSize int) *Framer {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	// The buffer starts at baseFramerBuffer; it grows for a frame that needs
	// it (up to a full-size line with its CR and LF) and, while reads keep
	// filling it, up to readFramerBuffer; it shrinks back once the
	// connection quiets down.
	limit := max(maxSize+2+maxFrameStart, readFramerBuffer)
	return &Framer{r: r, max: maxSize, limit: limit, buf: make([]byte, baseFramerBuffer)}
}

// FrameBudget bounds the buffer bytes all the Framers that share it hold
// beyond baseFramerBuffer each: the partial messages of every connection
// together. A Framer refused growth for a frame cuts the frame there, as if
// it were over the maximum size. Safe for concurrent use.
type FrameBudget struct {
	limit int64
	used  atomic.Int64
}

// NewFrameBudget returns a budget of limit bytes (<= 0: unbounded).
func NewFrameBudget(limit int64) *FrameBudget { return &FrameBudget{limit: limit} }

// Used returns the bytes taken now.
func (b *FrameBudget) Used() int64 { return b.used.Load() }

// take takes n bytes, or reports false and takes nothing when they would go
// past the limit.
func (b *FrameBudget) take(n int64) bool {
	if b.limit <= 0 {
		b.used.Add(n)
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// SetBudget makes the Framer take its buffer growth from b.
func (f *Framer) SetBudget(b *FrameBudget) { f.budget = b }

// Release gives the Framer's buffer growth back to its budget; the Framer
// is not to be used after.
func (f *Framer) Release() {
	if f.budget != nil && len(f.buf) > baseFramerBuffer {
		f.budget.used.Add(-int64(len(f.buf) - baseFramerBuffer))
	}
	f.buf = nil
}

// resize replaces the buffer with one of n bytes holding the unread bytes,
// charging the change to the budget. It reports false when the budget
// refuses a growth.
func (f *Framer) resize(n int) bool {
	delta := int64(n - len(f.buf))
	if f.budget != nil {
		if delta > 0 && !f.budget.take(delta) {
			return false
		}
		if delta < 0 {
			f.budget.used.Add(delta)
		}
	}
	nb := make([]byte, n)
	f.end = copy(nb, f.buf[f.start:f.end])
	f.start, f.buf = 0, nb
	return true
}

// SetContinuation sets how long a frame ended by LF waits for the first bytes
// of its next line, which say whether that line continues it; setDeadline
// (a net.Conn's SetReadDeadline) bounds each such read, and is called with
// the zero time after it. Without it the Framer waits for those bytes as
// long as the reader blocks, which suits a reader that ends. A wait <= 0
// turns continuation lines off: every LF ends a frame, as RFC 6587's
// non-transparent framing says.
func (f *Framer) SetContinuation(wait time.Duration, setDeadline func(t time.Time) error) {
	f.wait, f.setDeadline = wait, setDeadline
	if wait <= 0 {
		f.wait = -1
	}
}

// BytesRead returns how many bytes the Framer has read from its reader.
func (f *Framer) BytesRead() int64 { return f.read }

// SetBeforeRead has fn called before every read of the underlying reader,
// while the frames returned so far are still valid: the moment to hand on
// what was made of them before the read may block.
func (f *Framer) SetBeforeRead(fn func()) { f.beforeRead = fn }

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
	f.denied = false
	if f.err != nil {
		return false
	}
	if f.beforeRead != nil {
		f.beforeRead()
	}
	switch {
	case f.start == f.end:
		// Nothing unread: fit the buffer to the reads before the next one.
		f.start, f.end = 0, 0
		switch {
		case f.lastFull && len(f.buf) < readFramerBuffer:
			f.resize(min(2*len(f.buf), readFramerBuffer)) // refused: reads stay smaller
		case !f.lastFull && len(f.buf) > baseFramerBuffer:
			f.resize(baseFramerBuffer) // quiet again: give the memory back
		}
	case f.end == len(f.buf):
		grown := f.lastFull && len(f.buf) < readFramerBuffer && f.resize(min(2*len(f.buf), readFramerBuffer))
		switch {
		case grown: // reads keep filling the buffer: bigger reads
		case f.start > 0:
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		case len(f.buf) < f.limit:
			if !f.resize(min(2*len(f.buf), f.limit)) {
				f.denied = true
				return false
			}
		default:
			return false // callers never need more than limit bytes
		}
	}
	// Bounded like bufio: a reader that keeps returning nothing is broken.
	for range 100 {
		room := len(f.buf) - f.end
		n, err := f.r.Read(f.buf[f.end:])
		f.lastFull = n == room
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
			nul := f.buf[f.start+i] == 0
			f.start += i + 1
			if nul || !f.skipCont || f.newFrameAt(0) {
				f.skipLine = false
			}
			continue
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
		if f.denied { // no room for the rest: cut here, skip the rest
			f.denied = false
			f.skip = n - got
			return frame, true
		}
		return frame, false // the input ended inside the frame: deliver what came
	}
	if n > f.max {
		f.skip = n - f.max
		return frame, true
	}
	return frame, false
}

// lineFrame returns a frame ended by NUL, or by a LF after which no line
// continues it (the terminator is consumed), or the unterminated rest when
// the input ends.
func (f *Framer) lineFrame() ([]byte, bool) {
	// Fast path: the terminator and the start of the next frame are both
	// in the buffer already, as they are for most frames of a busy sender.
	window := f.buf[f.start:f.end]
	if len(window) > f.max+2 {
		window = window[:f.max+2]
	}
	if i := indexTerminator(window); i >= 0 &&
		(window[i] == 0 || f.wait < 0 || !beginsWithPRI(window) || lineStart(f.buf[f.start+i+1:f.end]) == startsFrame) {
		f.start += i + 1
		return window[:i], false
	}
	return f.lineFrameSlow()
}

// lineFrameSlow is lineFrame when the frame may go on past a LF or its
// terminator has not been read yet.
func (f *Framer) lineFrameSlow() ([]byte, bool) {
	scanned := 0
	// Whether the frame may go on past a LF: it begins with a PRI. Known
	// once the first LF is found, when its first bytes are surely there.
	continues, known := false, false
	for {
		window := f.buf[f.start:f.end]
		if len(window) > f.max+2 {
			window = window[:f.max+2]
		}
		if i := indexTerminator(window[scanned:]); i >= 0 {
			end := scanned + i
			if !known {
				continues, known = f.wait >= 0 && beginsWithPRI(window), true
			}
			if window[end] == 0 || !continues || f.newFrameAt(end+1) {
				// newFrameAt may have moved the buffer: take the frame anew.
				frame := f.buf[f.start : f.start+end]
				f.start += end + 1
				return frame, false // Next cuts it if it is still too long once trimmed
			}
			scanned = end + 1
			continue
		}
		scanned = len(window)
		if scanned == f.max+2 {
			// No terminator in sight: cut, and skip the rest of the line.
			f.start += scanned
			f.skipLine = true
			f.skipCont = f.wait >= 0 && beginsWithPRI(window)
			return window[:f.max], true
		}
		if !f.fill() {
			frame := f.buf[f.start:f.end]
			f.start = f.end
			if f.denied { // no room for the rest of the line: cut here, skip the rest
				f.denied = false
				f.skipLine = true
				f.skipCont = f.wait >= 0 && beginsWithPRI(frame)
				return frame, true
			}
			return frame, false
		}
	}
}

// newFrameAt reports whether the line at f.start+off, just after a LF, ends
// the frame before it: it starts a new frame, or the input ended, or none of
// it came within the continuation wait.
func (f *Framer) newFrameAt(off int) bool {
	for {
		switch lineStart(f.buf[f.start+off : f.end]) {
		case startsFrame:
			return true
		case continuesFrame:
			return false
		}
		if !f.fillWithin() {
			return true
		}
	}
}

// fillWithin is fill bounded by the continuation wait. It reports whether
// bytes arrived; the wait running out is not an error of the reader.
func (f *Framer) fillWithin() bool {
	if f.setDeadline == nil || f.err != nil || f.wait <= 0 {
		return f.fill()
	}
	if err := f.setDeadline(time.Now().Add(f.wait)); err != nil {
		return f.fill()
	}
	ok := f.fill()
	if !ok && errors.Is(f.err, os.ErrDeadlineExceeded) {
		f.err = nil
	}
	if err := f.setDeadline(time.Time{}); err != nil && f.err == nil {
		f.err = err
	}
	return ok
}

// What the first bytes of a line say about it.
const (
	startUnknown   = iota // too few bytes to tell
	startsFrame           // "<" and a digit, or "LEN <": a new frame
	continuesFrame        // anything else: the line goes on the frame before
)

// lineStart tells whether b, the start of a line, begins a new frame: '<'
// and a digit (a PRI), or an octet count followed by a message ("123 <").
func lineStart(b []byte) int {
	if len(b) > 1 && b[0] == '<' { // the common case first, small enough to inline
		if b[1] >= '0' && b[1] <= '9' {
			return startsFrame
		}
		return continuesFrame
	}
	return lineStartSlow(b)
}

// lineStartSlow is lineStart for what is not "<" and a byte.
func lineStartSlow(b []byte) int {
	switch {
	case len(b) == 0 || b[0] == '<':
		return startUnknown
	case b[0] < '1' || b[0] > '9':
		return continuesFrame
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == ' ':
			if i+1 == len(b) {
				return startUnknown
			}
			if b[i+1] == '<' {
				return startsFrame
			}
			return continuesFrame
		case c < '0' || c > '9' || i >= maxCountDigits:
			return continuesFrame
		}
	}
	return startUnknown
}

// beginsWithPRI reports whether a frame begins with '<' and a digit, as every
// syslog message does: only such frames take continuation lines.
func beginsWithPRI(b []byte) bool {
	return len(b) > 1 && b[0] == '<' && b[1] >= '0' && b[1] <= '9'
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
