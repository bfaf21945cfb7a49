package stream

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// countingWriter records the size of each write.
type countingWriter struct {
	bytes.Buffer
	writes []int
	fail   bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, errors.New("peer gone")
	}
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// TestBatchWriter: a batch goes out in one write while it fits the bound,
// in writes of at most the bound when it does not, and the buffer goes
// back to small when released; a failed write is returned from then on.
func TestBatchWriter(t *testing.T) {
	var w countingWriter
	b := &batchWriter{w: &w}
	for range 10 {
		_, _ = b.WriteString(strings.Repeat("a", 1000))
	}
	if err := b.Flush(); err != nil || len(w.writes) != 1 || w.writes[0] != 10_000 {
		t.Fatalf("small batch: writes %v (%v), want one of 10000", w.writes, err)
	}
	w.writes = nil
	for range 100 {
		_, _ = b.WriteString(strings.Repeat("b", 1000))
		_ = b.WriteByte('\n')
	}
	_ = b.Flush()
	total := 0
	for _, n := range w.writes {
		if n > maxBatchBuffer {
			t.Fatalf("a write of %d bytes, bound %d", n, maxBatchBuffer)
		}
		total += n
	}
	if total != 100_100 || cap(b.buf) > 2*maxBatchBuffer {
		t.Fatalf("big batch: %d bytes written, buffer cap %d", total, cap(b.buf))
	}
	b.release()
	if cap(b.buf) > idleBuffer {
		t.Fatalf("released buffer keeps %d bytes", cap(b.buf))
	}
	w.fail = true
	_, _ = b.WriteString("x")
	if err := b.Flush(); err == nil {
		t.Fatal("a failed write was not returned")
	}
	if _, err := b.WriteString(strings.Repeat("c", maxBatchBuffer)); err == nil {
		t.Fatal("a write after a failure succeeded")
	}
}
