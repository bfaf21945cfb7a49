package tlsfile

import (
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// TestReload: a certificate replaced on disk is served from the next check
// on; a broken pair keeps the previous certificate.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir)
	certFile, keyFile := ca.ServerCert(t, "server")
	c, err := Load(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		cert, err := c.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.Int64()
	}
	first := serial()

	// A renewal: both files replaced (same names), then the next check.
	ca.ServerCert(t, "server")
	c.checked = time.Time{}
	renewed := serial()
	if renewed == first {
		t.Fatalf("still serving serial %d after the renewal", first)
	}

	// Half a renewal: the key file replaced by garbage. The last good pair stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.checked = time.Time{}
	if got := serial(); got != renewed {
		t.Fatalf("serving serial %d after a broken renewal, want %d", got, renewed)
	}

	if _, err := Load(certFile, keyFile, nil); err == nil {
		t.Fatal("Load accepted a broken key")
	}
	if _, err := Load(certFile+".missing", keyFile, nil); err == nil {
		t.Fatal("Load accepted a missing file")
	}
}
