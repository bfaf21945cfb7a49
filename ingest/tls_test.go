package ingest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/logviewer/logviewer/internal/testsupport"
	"github.com/logviewer/logviewer/internal/tlsfile"
)

// tlsSetup is a CA made for the test and a TLS configuration serving its
// server certificate, requiring client certificates it signed when
// clientCA is set.
type tlsSetup struct {
	ca  *testsupport.CA
	dir string
	cfg *tls.Config
}

func newTLSSetup(t *testing.T, clientCA bool) *tlsSetup {
	t.Helper()
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir)
	certFile, keyFile := ca.ServerCert(t, "server")
	cert, err := tlsfile.Load(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cert.ServerConfig()
	if clientCA {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool
	}
	return &tlsSetup{ca: ca, dir: dir, cfg: cfg}
}

// client returns a client configuration trusting the CA, with a client
// certificate for cn when cn is not empty.
func (s *tlsSetup) client(t *testing.T, cn string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.ca.Pool, ServerName: "127.0.0.1"}
	if cn != "" {
		certFile, keyFile := s.ca.ClientCert(t, "client-"+cn, cn)
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

func startTLSServer(t *testing.T, setup *tlsSetup, cfg Config) *testServer {
	t.Helper()
	cfg.TLSAddr, cfg.TLS = "127.0.0.1:0", setup.cfg
	return startServer(t, cfg, nil)
}

func dialTLS(t *testing.T, addr net.Addr, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", addr.String(), cfg)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestTLSRecords: frames over TLS, in every framing, become records that
// carry the client certificate's CN when client certificates are required,
// and none without.
func TestTLSRecords(t *testing.T) {
	tests := []struct {
		name     string
		clientCA bool
		cn       string
		wantPeer any
	}{
		{"client certificate required", true, "billing-sender", "billing-sender"},
		{"no client certificates", false, "", nil},
		{"a client certificate not asked for", false, "unasked", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setup := newTLSSetup(t, tc.clientCA)
			ts := startTLSServer(t, setup, Config{})
			c, err := dialTLS(t, ts.TLSAddr(), setup.client(t, tc.cn))
			if err != nil {
				t.Fatalf("dial tls: %v", err)
			}
			payload := octetFrame("<13>1 2026-11-24T10:00:00Z web1 app 7 - - octet\nwith LF") + "<14>lf line\n<14>nul line\x00"
			if _, err := io.WriteString(c, payload); err != nil {
				t.Fatal(err)
			}
			want := []string{"octet\nwith LF", "lf line", "nul line"}
			recs := ts.pub.wait(t, len(want))
			for i, r := range recs {
				if r.msg() != want[i] || r.fields["_tls_peer"] != tc.wantPeer || r.name() != "127.0.0.1" {
					t.Errorf("record %d: %q _tls_peer %v from %q, want %q with %v from 127.0.0.1", i, r.msg(), r.fields["_tls_peer"], r.name(), want[i], tc.wantPeer)
				}
			}
			if got := ts.value(t, "logviewer_ingest_lines_total", "tls"); got != 3 {
				t.Errorf("tls lines counter %v, want 3", got)
			}
			if got := ts.value(t, "logviewer_ingest_bytes_total", "tls"); got != float64(len(payload)) {
				t.Errorf("tls bytes counter %v, want %d", got, len(payload))
			}
			if got := ts.value(t, "logviewer_ingest_connections", "tls"); got != 1 {
				t.Errorf("tls connections gauge %v, want 1", got)
			}
			c.Close()
			testsupport.Eventually(t, waitFor, func() bool { return ts.value(t, "logviewer_ingest_connections", "tls") == 0 },
				"tls connections gauge not back to 0")
		})
	}
}

func octetFrame(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

// TestTLSRefusesClientWithoutCertificate: with client certificates
// required, a client without one (or with one from another CA) makes no
// record and its failed handshake is counted.
func TestTLSRefusesClientWithoutCertificate(t *testing.T) {
	setup := newTLSSetup(t, true)
	other := newTLSSetup(t, false)
	ts := startTLSServer(t, setup, Config{})
	strangerCfg := setup.client(t, "")
	strangerCfg.Certificates = other.client(t, "stranger").Certificates
	for i, cfg := range []*tls.Config{setup.client(t, ""), strangerCfg} {
		c, err := dialTLS(t, ts.TLSAddr(), cfg)
		if err == nil {
			// TLS 1.3: the client finishes first and learns of the refusal
			// when it reads.
			_, _ = io.WriteString(c, "<14>should not arrive\n")
			_ = c.SetReadDeadline(time.Now().Add(waitFor))
			_, err = c.Read(make([]byte, 1))
		}
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d: %v, want the server to refuse it", i, err)
		}
		testsupport.Eventually(t, waitFor, func() bool {
			return ts.value(t, "logviewer_ingest_rejected_total", metrics.RejectTLSHandshake) == float64(i+1)
		}, "handshake failure not counted")
	}
	if recs := ts.pub.all(); len(recs) != 0 {
		t.Fatalf("records from refused clients: %v", recs)
	}
}

// TestTLSHandshakeTimeout: a client that connects and says nothing is
// dropped when the handshake timeout ends, and counted.
func TestTLSHandshakeTimeout(t *testing.T) {
	setup := newTLSSetup(t, true)
	ts := startTLSServer(t, setup, Config{HandshakeTimeout: 100 * time.Millisecond})
	c, err := net.DialTimeout("tcp", ts.TLSAddr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent client: read %d, %v; want the server to close it", n, err)
	}
	testsupport.Eventually(t, waitFor, func() bool {
		return ts.value(t, "logviewer_ingest_rejected_total", metrics.RejectTLSHandshake) == 1
	}, "handshake timeout not counted")
}

// TestTLSStopsWithClientConnected: shutdown ends connected TLS clients and
// a handshake in progress.
func TestTLSStopsWithClientConnected(t *testing.T) {
	setup := newTLSSetup(t, true)
	ts := startTLSServer(t, setup, Config{})
	c, err := dialTLS(t, ts.TLSAddr(), setup.client(t, "sender"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "<14>before stop\n"); err != nil {
		t.Fatal(err)
	}
	ts.pub.wait(t, 1)
	silent, err := net.DialTimeout("tcp", ts.TLSAddr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	ts.stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v", d)
	}
	if got := ts.value(t, "logviewer_ingest_rejected_total", metrics.RejectTLSHandshake); got != 0 {
		t.Errorf("a handshake ended by shutdown counted as failed (%v)", got)
	}
}

// TestPlainPortRefusesTLSAndHTTP: a TLS ClientHello or an HTTP request on
// the plain TCP port closes the connection, is counted and makes no record;
// syslog frames, sent byte by byte, are unaffected.
func TestPlainPortRefusesTLSAndHTTP(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	addr := ts.TCPAddr().String()

	c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("TLS handshake on the plain port succeeded")
	}
	client := &http.Client{Timeout: waitFor}
	if resp, err := client.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP GET on the plain port answered %s", resp.Status)
	}
	for _, reason := range []string{metrics.RejectTLS, metrics.RejectHTTP} {
		testsupport.Eventually(t, waitFor, func() bool { return ts.value(t, "logviewer_ingest_rejected_total", reason) >= 1 },
			"%s not counted", reason)
	}

	// Byte by byte: the first bytes alone decide nothing wrongly.
	for _, payload := range []string{"<14>slow sender\n", "GETTING warm\n", "POST office\n", "\x16not tls\n"} {
		c := ts.dial(t, "tcp", "")
		for i := range len(payload) {
			write(t, c, payload[i:i+1])
			time.Sleep(2 * time.Millisecond) // let each byte be read on its own
		}
		c.Close()
	}
	recs := ts.pub.wait(t, 4)
	want := []string{"slow sender", "GETTING warm", "POST office", "\x16not tls"}
	for i, r := range recs {
		if i >= len(want) || !strings.HasSuffix(r.msg(), want[i]) {
			t.Errorf("record %d: %q, want %q", i, r.msg(), want)
		}
	}
	// The refused connections made no record (the client may have retried).
	if got := ts.value(t, "logviewer_ingest_lines_total", "tcp"); got != 4 {
		t.Errorf("tcp lines %v, want 4: only the syslog senders' lines", got)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", probeNeedMore},
		{"<", probeSyslog},
		{"1", probeSyslog},
		{"\x16", probeNeedMore},
		{"\x16\x03", metrics.RejectTLS},
		{"\x16\x03\x01\x02\x00", metrics.RejectTLS},
		{"\x16x", probeSyslog},
		{"G", probeNeedMore},
		{"GET", probeNeedMore},
		{"GET ", probeNeedMore},
		{"GET /", metrics.RejectHTTP},
		{"GET /metrics HTTP/1.1\r\n", metrics.RejectHTTP},
		{"GET x", probeSyslog},
		{"GETTING", probeSyslog},
		{"HEAD / HTTP/1.0", metrics.RejectHTTP},
		{"OPTIONS * HTTP/1.1", metrics.RejectHTTP},
		{"CONNECT example.com:443 HTTP/1.1", metrics.RejectHTTP},
		{"PRI * HTTP/2.0", metrics.RejectHTTP},
		{"P", probeNeedMore},
		{"PUT /x", metrics.RejectHTTP},
		{"Post /", probeSyslog},
		{"just text", probeSyslog},
		{"just", probeSyslog},
	}
	for _, tc := range tests {
		if got := classify([]byte(tc.in)); got != tc.want {
			t.Errorf("classify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
