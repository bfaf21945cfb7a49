package archive

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSegmentFormatGolden pins the on-disk format: a segment written today
// must read back in every later version, so a change to the bytes must be
// deliberate (go test ./archive -run Golden -update) and come with a way to
// read the old ones.
func TestSegmentFormatGolden(t *testing.T) {
	seg := []byte(segMagic)
	seg = appendFrame(seg, Key{1764000000000, 1}, 1764000000123456789, 0, "web-1",
		[]byte(`{"_event_id":"1764000000000-1","_channel":"web-1","short_message":"hello"}`))
	seg = appendFrame(seg, Key{1764000000000, 7}, 1764000001000000000, flagHole, "", nil)
	seg = appendFrame(seg, Key{1764000000001, 1}, 1764000002000000000, 0, "db",
		[]byte(`{"_event_id":"1764000000001-1","_channel":"db","short_message":"ünïcode \u2028"}`))
	golden := filepath.Join("testdata", "segment.golden")
	if *update {
		if err := os.WriteFile(golden, seg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(seg, want) {
		t.Fatalf("the segment format changed:\n got %x\nwant %x", seg, want)
	}
	// And the golden file reads back as an archive.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segName(Key{1764000000000, 1})), want, 0o640); err != nil {
		t.Fatal(err)
	}
	a, err := Open(Config{Dir: dir, Retention: 100 * 365 * 24 * time.Hour}) // its records are from 2025
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var got []string
	if _, err := a.Scan(context.Background(), ScanOptions{}, func(e *Entry) bool {
		got = append(got, e.Key.String()+" "+string(e.Channel)+" "+string(e.JSON))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] != "1764000000000-7  " || a.Last() != (Key{1764000000001, 1}) {
		t.Fatalf("read back %q, last %v", got, a.Last())
	}
}
