package peerwatch

import (
	"io"
	"testing"
)

// TestWatchReadable: ready is called when bytes wait, the bytes are left
// for the caller, and a new watch after reading reports the next bytes and
// then the peer's close.
func TestWatchReadable(t *testing.T) {
	w := newWatcher(t)
	server, client := pair(t)
	for _, msg := range []string{"ping", "pong"} {
		ready := make(chan struct{})
		stop, err := w.WatchReadable(server, func() { close(ready) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ready, msg)
		stop()
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(server, b); err != nil || string(b) != msg {
			t.Fatalf("read %q, %v; want %q: the watcher must not read", b, err, msg)
		}
	}
	ready := make(chan struct{})
	stop, err := w.WatchReadable(server, func() { close(ready) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client.Close()
	waitClosed(t, ready, "close")
	if w.Len() != 0 {
		t.Fatalf("%d connections still watched", w.Len())
	}
}

// TestWatchReadableClosedWatcher: a closed watcher says it cannot watch.
func TestWatchReadableClosedWatcher(t *testing.T) {
	w := newWatcher(t)
	server, _ := pair(t)
	w.Close()
	if _, err := w.WatchReadable(server, func() {}); err == nil {
		t.Fatal("a closed watcher watches")
	}
}
