package archive

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain runs the appending child of TestKillNineKeepsSyncedRecords when
// asked to by the environment.
func TestMain(m *testing.M) {
	if dir := os.Getenv("ARCHIVE_TEST_CHILD_DIR"); dir != "" {
		os.Exit(appendChild(dir, os.Getenv("ARCHIVE_TEST_CHILD_EPOCH")))
	}
	os.Exit(m.Run())
}

// appendChild appends records as fast as it can and, after every Sync,
// prints the newest key that Sync covered. It runs until killed.
func appendChild(dir, epochText string) int {
	epoch, _ := strconv.ParseInt(epochText, 10, 64)
	a, err := Open(Config{Dir: dir, Fsync: 20 * time.Millisecond, SegmentBytes: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for seq := uint64(1); ; seq++ {
		a.Append(Key{epoch, seq}, time.Now().UnixNano(), "ch", []byte(`{"short_message":"line `+strconv.FormatUint(seq, 10)+`"}`))
		if seq%500 == 0 {
			if err := a.Sync(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Fprintf(out, "synced %d\n", seq)
			out.Flush()
		}
	}
}

// TestKillNineKeepsSyncedRecords kills an appending process with SIGKILL
// 20 times at random moments: every reopen finds no corrupt segment left,
// every record synced before the kill, and each epoch's records in order
// with no hole and no duplicate.
func TestKillNineKeepsSyncedRecords(t *testing.T) {
	dir := t.TempDir()
	const rounds = 20
	synced := map[int64]uint64{}
	for round := range rounds {
		epoch := int64(round + 1)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ARCHIVE_TEST_CHILD_DIR="+dir, "ARCHIVE_TEST_CHILD_EPOCH="+strconv.FormatInt(epoch, 10))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		lines := 0
		killAt := 3 + round%7 // after a varying number of syncs, and a varying time after that
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "synced "); ok {
				v, _ := strconv.ParseUint(n, 10, 64)
				synced[epoch] = v
				lines++
				if lines == killAt {
					time.AfterFunc(time.Duration(round)*3*time.Millisecond, func() { cmd.Process.Kill() })
				}
			}
		}
		cmd.Wait()
		if synced[epoch] == 0 {
			t.Fatalf("round %d: the child synced nothing before it died", round)
		}
		a, err := Open(Config{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		next := map[int64]uint64{}
		_, err = a.Scan(context.Background(), ScanOptions{}, func(e *Entry) bool {
			next[e.Key.Epoch]++
			if e.Key.Seq != next[e.Key.Epoch] {
				t.Fatalf("round %d: key %v follows seq %d", round, e.Key, next[e.Key.Epoch]-1)
			}
			if want := fmt.Sprintf(`{"short_message":"line %d"}`, e.Key.Seq); string(e.JSON) != want {
				t.Fatalf("round %d: record %v is %q", round, e.Key, e.JSON)
			}
			return true
		})
		a.Close()
		if err != nil {
			t.Fatalf("round %d: scan: %v", round, err)
		}
		for ep, s := range synced {
			if next[ep] < s {
				t.Fatalf("round %d: epoch %d has %d records, but %d were synced", round, ep, next[ep], s)
			}
		}
		t.Logf("round %d: synced %d, found %d", round, synced[epoch], next[epoch])
	}
}
