package ratelog

import "testing"

func TestLimiter(t *testing.T) {
	var l Limiter
	if n, ok := l.Allow(); !ok || n != 0 {
		t.Fatalf("first line: %d %v, want it through", n, ok)
	}
	for range 5 {
		if _, ok := l.Allow(); ok {
			t.Fatal("a second line within the second went through")
		}
	}
	l.last = l.last.Add(-2e9) // a second and more later
	if n, ok := l.Allow(); !ok || n != 5 {
		t.Fatalf("after the second: %d %v, want 5 held back and this one through", n, ok)
	}
}
