package testsupport

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyMessageShowsStateAtDeadline(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	polls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(rec, 50*time.Millisecond, func() bool { polls++; return false },
			"polled %d times, first arg %d", func() any { return polls }, polls)
	}()
	<-done
	want := fmt.Sprintf("after 50ms: polled %d times, first arg 0", polls)
	if polls < 2 || rec.msg != want {
		t.Fatalf("message %q after %d polls, want %q", rec.msg, polls, want)
	}
}
