package stream

import "io"

// idleBuffer is the most a client's write buffer keeps while it waits for
// records; a bigger one is given back, so an idle client costs little.
const idleBuffer = 4 << 10

// batchWriter gathers one batch of a client's events and sends it with one
// Write. Its buffer grows with the batch and is given back by release when
// the client goes idle.
type batchWriter struct {
	w   io.Writer
	buf []byte
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *batchWriter) WriteString(s string) (int, error) {
	b.buf = append(b.buf, s...)
	return len(s), nil
}

func (b *batchWriter) WriteByte(c byte) error {
	b.buf = append(b.buf, c)
	return nil
}

// Flush sends what was gathered.
func (b *batchWriter) Flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// release gives back a buffer grown past idleBuffer; nothing is pending.
func (b *batchWriter) release() {
	if cap(b.buf) > idleBuffer {
		b.buf = nil
	}
}
