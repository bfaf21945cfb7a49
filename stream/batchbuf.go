package stream

import "io"

// idleBuffer is the most a client's write buffer keeps while it waits for
// records; a bigger one is given back, so an idle client costs little.
const idleBuffer = 512

// maxBatchBuffer bounds a client's write buffer: past it what was gathered
// is sent before more is added, so a client whose writes block (a stuck
// reader) holds at most this much, however big its batch.
const maxBatchBuffer = 32 << 10

// batchWriter gathers a client's events and sends them in writes of up to
// maxBatchBuffer. Its buffer grows as needed and is given back by release
// when the client goes idle. After a failed write every call returns that
// error.
type batchWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// room sends what was gathered when n more bytes would pass the bound.
func (b *batchWriter) room(n int) error {
	if b.err == nil && len(b.buf) > 0 && len(b.buf)+n > maxBatchBuffer {
		b.err = b.send()
	}
	return b.err
}

func (b *batchWriter) send() error {
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *batchWriter) Write(p []byte) (int, error) {
	if err := b.room(len(p)); err != nil {
		return 0, err
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *batchWriter) WriteString(s string) (int, error) {
	if err := b.room(len(s)); err != nil {
		return 0, err
	}
	b.buf = append(b.buf, s...)
	return len(s), nil
}

func (b *batchWriter) WriteByte(c byte) error {
	if err := b.room(1); err != nil {
		return err
	}
	b.buf = append(b.buf, c)
	return nil
}

// Flush sends what was gathered.
func (b *batchWriter) Flush() error {
	if b.err != nil || len(b.buf) == 0 {
		return b.err
	}
	b.err = b.send()
	return b.err
}

// release gives back a buffer grown past idleBuffer; nothing is pending.
func (b *batchWriter) release() {
	if cap(b.buf) > idleBuffer {
		b.buf = nil
	}
}
