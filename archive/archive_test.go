package archive

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rec is a record as a test appends it.
type rec struct {
	key  Key
	time int64
	ch   string
	js   string
}

func open(t *testing.T, dir string, cfg Config) *Archive {
	t.Helper()
	cfg.Dir = dir
	if cfg.Fsync == 0 {
		cfg.Fsync = 10 * time.Millisecond
	}
	a, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// fill appends n records of epoch from seq first on, channels ch0..ch{chans-1}.
func fill(a *Archive, epoch int64, first uint64, n, chans int, t0 time.Time) []rec {
	var out []rec
	for i := range n {
		r := rec{
			key:  Key{Epoch: epoch, Seq: first + uint64(i)},
			time: t0.Add(time.Duration(i) * time.Millisecond).UnixNano(),
			ch:   fmt.Sprintf("ch%d", i%chans),
		}
		r.js = fmt.Sprintf(`{"_event_id":%q,"short_message":"line %d %s"}`, r.key, i, strings.Repeat("x", i%50))
		a.Append(r.key, r.time, r.ch, []byte(r.js))
		out = append(out, r)
	}
	return out
}

// collect runs a scan and returns what it handed out.
func collect(t *testing.T, a *Archive, o ScanOptions, limit int) ([]rec, ScanResult) {
	t.Helper()
	var got []rec
	res, err := a.Scan(context.Background(), o, func(e *Entry) bool {
		if e.Hole {
			got = append(got, rec{key: e.Key, ch: "<hole>"})
		} else {
			got = append(got, rec{key: e.Key, time: e.Time, ch: string(e.Channel), js: string(e.JSON)})
		}
		return limit <= 0 || len(got) < limit
	})
	if err != nil {
		t.Fatalf("scan %+v: %v", o, err)
	}
	return got, res
}

// brute selects from all what o selects, in its order.
func brute(all []rec, o ScanOptions) []rec {
	var out []rec
	for _, r := range all {
		if (!o.After.IsZero() && r.key.Compare(o.After) <= 0) || (!o.Before.IsZero() && r.key.Compare(o.Before) >= 0) ||
			(o.Since != 0 && r.time < o.Since) || (o.Until != 0 && r.time > o.Until) ||
			(o.Match != nil && !o.Match(r.ch)) {
			continue
		}
		out = append(out, r)
	}
	if o.Desc {
		slices.Reverse(out)
	}
	return out
}

func TestKeyText(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"1764000000000-1", true}, {"0-0", true}, {"1-", false}, {"-1", false}, {"a-1", false},
		{"1-+2", false}, {"99999999999999999999-1", false}, {"", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			k, err := ParseKey(tc.id)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseKey(%q) = %v, %v; want ok %v", tc.id, k, err, tc.ok)
			}
			if tc.ok && k.String() != tc.id {
				t.Fatalf("String() = %q, want %q", k.String(), tc.id)
			}
		})
	}
	if (Key{1, 9}).Compare(Key{2, 1}) >= 0 || (Key{2, 1}).Compare(Key{2, 2}) >= 0 || (Key{2, 2}).Compare(Key{2, 2}) != 0 {
		t.Fatal("Compare does not order by epoch, then seq")
	}
}

// TestScanMatchesBruteForce compares many random scans with a filter of
// the records appended, over several segments and a reopen.
func TestScanMatchesBruteForce(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, Config{SegmentBytes: 32 << 10})
	t0 := time.Now().Add(-2 * time.Hour)
	all := fill(a, 100, 1, 3000, 7, t0)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = open(t, dir, Config{SegmentBytes: 32 << 10})
	all = append(all, fill(a, 200, 1, 2000, 5, t0.Add(time.Hour))...)
	if a.Last() != all[len(all)-1].key || a.First() != all[0].key {
		t.Fatalf("First/Last = %v/%v, want %v/%v", a.First(), a.Last(), all[0].key, all[len(all)-1].key)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() Key {
		if rng.IntN(5) == 0 {
			return Key{}
		}
		return all[rng.IntN(len(all))].key
	}
	for i := range 300 {
		o := ScanOptions{After: pick(), Before: pick(), Desc: rng.IntN(2) == 0}
		if rng.IntN(3) == 0 {
			o.Since = all[rng.IntN(len(all))].time
		}
		if rng.IntN(3) == 0 {
			o.Until = all[rng.IntN(len(all))].time
		}
		if rng.IntN(2) == 0 {
			want := fmt.Sprintf("ch%d", rng.IntN(8))
			o.Match = func(ch string) bool { return ch == want }
		}
		got, res := collect(t, a, o, 0)
		want := brute(all, o)
		if !slices.Equal(got, want) {
			t.Fatalf("scan %d %+v: got %d records, want %d", i, o, len(got), len(want))
		}
		if !res.Done {
			t.Fatalf("scan %d: not done", i)
		}
	}
	// A bounded scan continues where it stopped and sees each record once.
	for _, desc := range []bool{false, true} {
		var got []rec
		o := ScanOptions{Desc: desc, MaxBytes: 10 << 10}
		for range 1000 {
			part, res := collect(t, a, o, 0)
			got = append(got, part...)
			if res.Done {
				break
			}
			if desc {
				o.Before = res.Last
			} else {
				o.After = res.Last
			}
		}
		if want := brute(all, ScanOptions{Desc: desc}); !slices.Equal(got, want) {
			t.Fatalf("paged scan desc=%v: got %d, want %d", desc, len(got), len(want))
		}
	}
}

func TestTornTailIsCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(t *testing.T, path string, size int64)
		keep int // records left of 100
	}{
		{"half frame", func(t *testing.T, path string, size int64) { truncate(t, path, size-10) }, 99},
		{"length only", func(t *testing.T, path string, size int64) { appendBytes(t, path, []byte{0x40, 0, 0}) }, 100},
		{"garbage after", func(t *testing.T, path string, size int64) { appendBytes(t, path, bytes.Repeat([]byte{0xff}, 100)) }, 100},
		{"zeros after", func(t *testing.T, path string, size int64) { appendBytes(t, path, make([]byte, 4096)) }, 100},
		{"flipped byte in record 50", func(t *testing.T, path string, size int64) { flip(t, path, size/2) }, 50},
		{"header only", func(t *testing.T, path string, size int64) { truncate(t, path, 5) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := open(t, dir, Config{})
			all := fill(a, 5, 1, 100, 2, time.Now())
			a.Close()
			names, _ := listSegments(dir)
			path := filepath.Join(dir, names[0])
			st, _ := os.Stat(path)
			tc.harm(t, path, st.Size())
			a = open(t, dir, Config{})
			got, _ := collect(t, a, ScanOptions{}, 0)
			if len(got) < tc.keep-1 || len(got) > tc.keep || !slices.Equal(got, all[:len(got)]) {
				t.Fatalf("after %s: %d records kept, want %d, the first ones", tc.name, len(got), tc.keep)
			}
			// Appending goes on after the cut, and all of it reads back.
			more := fill(a, 6, 1, 10, 2, time.Now())
			a.Close()
			a = open(t, dir, Config{})
			got, _ = collect(t, a, ScanOptions{}, 0)
			if want := append(all[:len(got)-10:len(got)-10], more...); !slices.Equal(got, want) {
				t.Fatalf("after reopening: %d records, want %d", len(got), len(want))
			}
		})
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x55
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestRetention(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		cfg  Config
		// old records (8 days ago) then new ones
		old, recent int
		check       func(t *testing.T, a *Archive, all []rec)
	}{
		{
			name: "by size", cfg: Config{SegmentBytes: 16 << 10, RetentionBytes: 64 << 10}, recent: 5000,
			check: func(t *testing.T, a *Archive, all []rec) {
				if got := a.Size(); got > 64<<10+16<<10 {
					t.Fatalf("size %d over the bound plus a segment", got)
				}
				got, _ := collect(t, a, ScanOptions{}, 0)
				if len(got) == 0 || len(got) == len(all) || !slices.Equal(got, all[len(all)-len(got):]) {
					t.Fatalf("kept %d of %d records; want the newest, some deleted", len(got), len(all))
				}
				if a.First() != got[0].key {
					t.Fatalf("First %v, want %v", a.First(), got[0].key)
				}
			},
		},
		{
			name: "by age", cfg: Config{SegmentBytes: 16 << 10, Retention: 7 * 24 * time.Hour}, old: 2000, recent: 2000,
			check: func(t *testing.T, a *Archive, all []rec) {
				// The segment where old and recent records meet stays whole.
				got, _ := collect(t, a, ScanOptions{}, 0)
				old := 0
				for _, r := range got {
					if r.time < now.Add(-7*24*time.Hour).UnixNano() {
						old++
					}
				}
				if old > 300 || !slices.Equal(got[old:], all[len(all)-2000:]) {
					t.Fatalf("kept %d old and %d recent records; want the 2000 recent ones and at most a segment of old ones",
						old, len(got)-old)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := open(t, dir, tc.cfg)
			all := fill(a, 1, 1, tc.old, 3, now.Add(-8*24*time.Hour))
			all = append(all, fill(a, 1, uint64(tc.old)+1, tc.recent, 3, now)...)
			if err := a.Sync(); err != nil {
				t.Fatal(err)
			}
			a.mu.Lock()
			a.retainLocked(time.Now())
			a.mu.Unlock()
			tc.check(t, a, all)
			a.Close()
			tc.check(t, open(t, dir, tc.cfg), all) // and so it stays after a reopen
		})
	}
}

// FuzzDecodeFrame feeds the frame decoder arbitrary bytes: it must not
// panic, and what it accepts must encode back to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, Key{1, 2}, 3, 0, "web-1", []byte(`{"a":1}`)))
	f.Add(appendFrame(nil, Key{1, 2}, 3, flagHole, "", nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{27, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		n, err := decodeFrame(b, &e)
		if err != nil {
			return
		}
		flags := byte(0)
		if e.Hole {
			flags = flagHole
		}
		again := appendFrame(nil, e.Key, e.Time, flags, string(e.Channel), e.JSON)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("decoded %+v from %x, encodes to %x", e, b[:n], again)
		}
	})
}

// TestMaxScans lets one scan read at a time: a second waits for its turn
// and gives up when its context ends.
func TestMaxScans(t *testing.T) {
	a := open(t, t.TempDir(), Config{MaxScans: 1})
	fill(a, 1, 1, 10, 1, time.Now())
	inside, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := a.Scan(context.Background(), ScanOptions{}, func(*Entry) bool {
			close(inside)
			<-release
			return false
		})
		first <- err
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Scan(ctx, ScanOptions{}, func(*Entry) bool { return true }); err == nil {
		t.Fatal("a second scan ran beside the first with MaxScans 1")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got, _ := collect(t, a, ScanOptions{}, 0); len(got) != 10 {
		t.Fatalf("a scan after the first read %d records, want 10", len(got))
	}
}
