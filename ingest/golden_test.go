package ingest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/logviewer/logviewer/transform"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current output")

// goldenReceived and the other fixed inputs stand for what the server sets.
var goldenReceived = time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)

// goldenRecord parses one vector and encodes it as the server would. A
// vector named truncated_* is marked as cut by the framer; compat_* is
// encoded in compat mode.
func goldenRecord(name string, frame []byte) []byte {
	var m transform.Message
	parse(frame, &m, func() time.Time { return goldenReceived })
	m.Received = goldenReceived
	m.Peer = "app-host.example"
	m.Transport = "tcp"
	m.Truncated = strings.HasPrefix(name, "truncated")
	enc := transform.Encoder{Hostname: "logviewer-test", Group: "lr", Compat: strings.HasPrefix(name, "compat")}
	out, _ := enc.Append(nil, &m)
	return append(out, '\n')
}

// TestGolden encodes every testdata/vectors/<name>.syslog (the bytes of one
// frame) and compares the GELF record with testdata/golden/<name>.json.
// `go test ./ingest -run Golden -update` rewrites the golden files.
func TestGolden(t *testing.T) {
	vectors, err := filepath.Glob(filepath.Join("..", "testdata", "vectors", "*.syslog"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 20 {
		t.Fatalf("found %d vectors, want at least 20", len(vectors))
	}
	for _, path := range vectors {
		name := strings.TrimSuffix(filepath.Base(path), ".syslog")
		t.Run(name, func(t *testing.T) {
			frame, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenRecord(name, frame)
			if !json.Valid(got) || !utf8.Valid(got) {
				t.Fatalf("output is not valid JSON in UTF-8: %q", got)
			}
			goldenPath := filepath.Join("..", "testdata", "golden", name+".json")
			if *updateGolden {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s:\n got %s\nwant %s", name, got, want)
			}
		})
	}
}

// TestGoldenNoStrayFiles fails on golden files left behind by a removed or
// renamed vector.
func TestGoldenNoStrayFiles(t *testing.T) {
	golden, err := filepath.Glob(filepath.Join("..", "testdata", "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range golden {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		if _, err := os.Stat(filepath.Join("..", "testdata", "vectors", name+".syslog")); err != nil {
			t.Errorf("golden file %s has no vector: %v", path, err)
		}
	}
}
