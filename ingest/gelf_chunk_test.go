package ingest

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// gelfChunk builds one GELF chunk of message id.
func gelfChunk(id string, seq, count int, data []byte) []byte {
	var idb [8]byte
	copy(idb[:], id)
	c := append([]byte{0x1e, 0x0f}, idb[:]...)
	c = append(c, byte(seq), byte(count))
	return append(c, data...)
}

// splitChunks cuts msg into chunks of at most size bytes.
func splitChunks(id string, msg []byte, size int) [][]byte {
	n := (len(msg) + size - 1) / size
	var out [][]byte
	for i := range n {
		out = append(out, gelfChunk(id, i, n, msg[i*size:min((i+1)*size, len(msg))]))
	}
	return out
}

// testAssembler is an assembler on a fake clock that records what it drops.
func testAssembler() (*chunkAssembler, *fakeClock, *[]string) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	var dropped []string
	a := newChunkAssembler(func(peer netip.Addr, have, count int) {
		dropped = append(dropped, fmt.Sprintf("%s %d/%d", peer, have, count))
	})
	a.now = clock.Now
	return a, clock, &dropped
}

var (
	peerA = netip.MustParseAddr("192.0.2.1")
	peerB = netip.MustParseAddr("192.0.2.2")
)

func TestChunkReassembly(t *testing.T) {
	msg := []byte(strings.Repeat("0123456789", 50))
	chunks := splitChunks("msg-1", msg, 64) // 8 chunks
	tests := []struct {
		name   string
		order  []int
		extra  [][]byte // sent before the chunks
		want   []byte   // nil: not complete
		errors int
	}{
		{name: "in order", order: []int{0, 1, 2, 3, 4, 5, 6, 7}, want: msg},
		{name: "reversed", order: []int{7, 6, 5, 4, 3, 2, 1, 0}, want: msg},
		{name: "shuffled", order: []int{3, 0, 7, 5, 1, 6, 2, 4}, want: msg},
		{name: "repeats ignored", order: []int{0, 0, 1, 2, 2, 3, 4, 5, 6, 7}, want: msg},
		{name: "one missing", order: []int{0, 1, 2, 3, 5, 6, 7}},
		{name: "bad chunks do not disturb", order: []int{0, 1, 2, 3, 4, 5, 6, 7}, want: msg, errors: 4,
			extra: [][]byte{{0x1e, 0x0f, 1, 2, 3}, gelfChunk("x", 0, 0, nil), gelfChunk("x", 0, 129, nil), gelfChunk("x", 3, 3, nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _, dropped := testAssembler()
			errs := 0
			for _, c := range tc.extra {
				if _, err := a.add(peerA, c); err != nil {
					errs++
					if dropReason(err) != "gelf_invalid" {
						t.Errorf("bad chunk: reason %q, want gelf_invalid", dropReason(err))
					}
				}
			}
			var got []byte
			for i, k := range tc.order {
				out, err := a.add(peerA, chunks[k])
				if err != nil {
					t.Fatalf("chunk %d: %v", k, err)
				}
				if out != nil && i != len(tc.order)-1 {
					t.Fatalf("complete after %d of %d chunks", i+1, len(tc.order))
				}
				got = out
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if errs != tc.errors || len(*dropped) != 0 {
				t.Fatalf("%d errors (want %d), dropped %v", errs, tc.errors, *dropped)
			}
			n, m := a.pendingStats()
			if tc.want != nil && (n != 0 || m != 0) {
				t.Fatalf("pending after completion: %d bytes in %d messages", n, m)
			}
		})
	}
}

func TestChunkSingle(t *testing.T) {
	a, _, _ := testAssembler()
	out, err := a.add(peerA, gelfChunk("one", 0, 1, []byte(`{"x":1}`)))
	if err != nil || string(out) != `{"x":1}` {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestChunkPeersDoNotMix(t *testing.T) {
	a, _, _ := testAssembler()
	if out, _ := a.add(peerA, gelfChunk("same", 0, 2, []byte("a0"))); out != nil {
		t.Fatal("complete too early")
	}
	if out, _ := a.add(peerB, gelfChunk("same", 1, 2, []byte("b1"))); out != nil {
		t.Fatalf("peer B's chunk completed peer A's message: %q", out)
	}
	out, _ := a.add(peerA, gelfChunk("same", 1, 2, []byte("a1")))
	if string(out) != "a0a1" {
		t.Fatalf("got %q, want a0a1", out)
	}
}

func TestChunkCountChangeIsInvalid(t *testing.T) {
	a, _, _ := testAssembler()
	a.add(peerA, gelfChunk("m", 0, 3, []byte("x")))
	if _, err := a.add(peerA, gelfChunk("m", 1, 2, []byte("y"))); err == nil || dropReason(err) != "gelf_invalid" {
		t.Fatalf("err = %v, want gelf_invalid", err)
	}
	if n, m := a.pendingStats(); n != 0 || m != 0 {
		t.Fatalf("pending %d bytes in %d messages, want none", n, m)
	}
}

// TestChunkTimeout: an incomplete message is dropped 5 s after its first
// chunk, counted once, and its memory is given back.
func TestChunkTimeout(t *testing.T) {
	a, clock, dropped := testAssembler()
	chunks := splitChunks("late", bytes.Repeat([]byte("z"), 3000), 1000)
	a.add(peerA, chunks[0])
	clock.Add(3 * time.Second)
	a.add(peerA, chunks[1]) // later chunks do not extend the deadline
	if n, m := a.pendingStats(); n != 2000 || m != 1 {
		t.Fatalf("pending %d bytes in %d messages, want 2000 in 1", n, m)
	}
	clock.Add(1999 * time.Millisecond)
	a.expire()
	if len(*dropped) != 0 {
		t.Fatalf("dropped before the timeout: %v", *dropped)
	}
	clock.Add(time.Millisecond)
	a.expire()
	if want := []string{"192.0.2.1 2/3"}; fmt.Sprint(*dropped) != fmt.Sprint(want) {
		t.Fatalf("dropped %v, want %v", *dropped, want)
	}
	if n, m := a.pendingStats(); n != 0 || m != 0 {
		t.Fatalf("pending %d bytes in %d messages after the timeout, want 0", n, m)
	}
	// The last chunk, too late, starts a message of its own that never completes.
	if out, err := a.add(peerA, chunks[2]); out != nil || err != nil {
		t.Fatalf("late chunk: %q, %v", out, err)
	}
	clock.Add(5 * time.Second)
	a.add(peerB, gelfChunk("other", 0, 2, []byte("b"))) // an arrival expires old messages too
	if len(*dropped) != 2 {
		t.Fatalf("dropped %v, want the late chunk's message dropped too", *dropped)
	}
}

// TestChunkDropAll: what is pending when the receiver stops is counted.
func TestChunkDropAll(t *testing.T) {
	a, _, dropped := testAssembler()
	a.add(peerA, gelfChunk("m1", 0, 2, []byte("x")))
	a.add(peerB, gelfChunk("m2", 1, 3, []byte("y")))
	a.dropAll()
	if len(*dropped) != 2 {
		t.Fatalf("dropped %v, want both", *dropped)
	}
	if n, m := a.pendingStats(); n != 0 || m != 0 {
		t.Fatalf("pending %d bytes in %d messages, want none", n, m)
	}
}

// TestChunkBounds: past the byte budget or the message cap, the oldest
// incomplete messages make room.
func TestChunkBounds(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		a, _, dropped := testAssembler()
		a.maxBytes = 2500
		for i := range 3 {
			a.add(peerA, gelfChunk(fmt.Sprint("m", i), 0, 2, bytes.Repeat([]byte("x"), 1000)))
		}
		if n, m := a.pendingStats(); n != 2000 || m != 2 {
			t.Fatalf("pending %d bytes in %d messages, want 2000 in 2", n, m)
		}
		if len(*dropped) != 1 {
			t.Fatalf("dropped %v, want the oldest", *dropped)
		}
		// The newest still completes.
		if out, _ := a.add(peerA, gelfChunk("m2", 1, 2, []byte("!"))); len(out) != 1001 {
			t.Fatalf("newest message: %d bytes", len(out))
		}
		// A message alone past the budget is dropped, not kept.
		a.add(peerA, gelfChunk("big", 0, 2, bytes.Repeat([]byte("x"), 3000)))
		if n, m := a.pendingStats(); n > a.maxBytes || m != 0 {
			t.Fatalf("pending %d bytes in %d messages, budget %d", n, m, a.maxBytes)
		}
	})
	t.Run("messages", func(t *testing.T) {
		a, _, dropped := testAssembler()
		a.maxMessages = 10
		for i := range 25 {
			a.add(peerA, gelfChunk(fmt.Sprint("m", i), 0, 2, []byte("x")))
		}
		if _, m := a.pendingStats(); m != 10 {
			t.Fatalf("%d messages pending, want 10", m)
		}
		if len(*dropped) != 15 {
			t.Fatalf("%d dropped, want 15", len(*dropped))
		}
		if out, _ := a.add(peerA, gelfChunk("m24", 1, 2, []byte("y"))); string(out) != "xy" {
			t.Fatalf("newest message: %q", out)
		}
		if out, _ := a.add(peerA, gelfChunk("m0", 1, 2, []byte("y"))); out != nil {
			t.Fatalf("evicted message completed: %q", out)
		}
	})
}
