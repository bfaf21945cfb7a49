package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// forwardTLSConf is the rsyslog sender config the README points to; the
// tests run it with its names and paths rewritten.
const forwardTLSConf = "../deploy/rsyslog/forward-tls.conf"

// startTLSForwarder runs rsyslogd with the sender config forwarding to
// logviewer's TLS address, presenting certFile/keyFile and trusting caFile.
// Lines sent to its SyslogAddr (TCP) are forwarded.
func startTLSForwarder(t *testing.T, tlsAddr, caFile, certFile, keyFile string) *testsupport.Rsyslogd {
	t.Helper()
	raw, err := os.ReadFile(forwardTLSConf)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(tlsAddr)
	conf, err := testsupport.RewriteRsyslogConf(string(raw), map[string]string{
		"target": host, "port": port, "StreamDriverPermittedPeers": "localhost",
		"StreamDriver.CAFile": caFile, "StreamDriver.CertFile": certFile, "StreamDriver.KeyFile": keyFile,
	})
	if err != nil {
		t.Fatalf("%s: %v", forwardTLSConf, err)
	}
	// The input is added after the rewrite: its port is not logviewer's.
	in := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsupport.FreePort(t)))
	inHost, inPort, _ := net.SplitHostPort(in)
	conf = `module(load="imtcp")` + "\n" + `input(type="imtcp" address="` + inHost + `" port="` + inPort + `")` + "\n" + conf
	return testsupport.RunRsyslogd(t, conf, in)
}

// TestSyslogTLSFromRsyslog: real rsyslogd with rsyslog-gnutls forwards over
// RFC 5425 to --syslog-tls-addr with --syslog-client-ca. With a client
// certificate that CA signed, its records arrive with _tls_peer = the
// certificate's CN; one with a certificate of another CA, and a Go client
// with none, are refused, counted, and make no record.
func TestSyslogTLSFromRsyslog(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir)
	serverCert, serverKey := ca.ServerCert(t, "server")
	clientCert, clientKey := ca.ClientCert(t, "rsyslog-client", "rsyslog-sender")
	otherDir := t.TempDir()
	other := testsupport.NewCA(t, otherDir)
	strangerCert, strangerKey := other.ClientCert(t, "stranger", "stranger")

	d := testsupport.StartDaemon(t, "--syslog-tls-addr=127.0.0.1:0", "--syslog-tls-cert="+serverCert,
		"--syslog-tls-key="+serverKey, "--syslog-client-ca="+ca.File, "--dns=false")
	if d.SyslogTLSAddr == "" {
		t.Fatal("no syslog_tls address in the listening line")
	}
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")

	// Accepted: rsyslog with a certificate the CA signed.
	rs := startTLSForwarder(t, d.SyslogTLSAddr, ca.File, clientCert, clientKey)
	sendRaw(t, "tcp", rs.SyslogAddr, "<14>Nov 24 10:00:00 web1 billing: over tls via rsyslog\n")
	f := nextRecordWith(t, sse, "over tls via rsyslog")
	if f["_tls_peer"] != "rsyslog-sender" || f["_app"] != "billing" || f["_app_name"] != "127.0.0.1" {
		t.Errorf("record %v: want _tls_peer rsyslog-sender, _app billing, _app_name 127.0.0.1", f)
	}
	if n := metricValue(t, d.HTTPURL, `logviewer_ingest_lines_total{transport="tls"}`); n < 1 {
		t.Errorf("tls lines %v, want at least 1", n)
	}

	// Refused: rsyslog with a certificate of another CA.
	stranger := startTLSForwarder(t, d.SyslogTLSAddr, ca.File, strangerCert, strangerKey)
	sendRaw(t, "tcp", stranger.SyslogAddr, "<14>app: from the stranger\n")
	testsupport.Eventually(t, recordTimeout, func() bool {
		return metricValue(t, d.HTTPURL, `logviewer_ingest_rejected_total{reason="tls_handshake"}`) >= 1
	}, "the stranger's handshake was not refused")

	// Refused: a Go client without a certificate.
	before := metricValue(t, d.HTTPURL, `logviewer_ingest_rejected_total{reason="tls_handshake"}`)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: recordTimeout}, "tcp", d.SyslogTLSAddr,
		&tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
	if err == nil {
		_, _ = io.WriteString(c, "<14>app: from a client without a certificate\n")
		_ = c.SetReadDeadline(time.Now().Add(recordTimeout))
		_, err = c.Read(make([]byte, 1)) // TLS 1.3: the refusal comes with the first read
		c.Close()
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client without a certificate: %v, want it refused", err)
	}
	testsupport.Eventually(t, recordTimeout, func() bool {
		return metricValue(t, d.HTTPURL, `logviewer_ingest_rejected_total{reason="tls_handshake"}`) > before
	}, "the certificate-less client's refusal was not counted")

	// The accepted sender still gets through, and nothing of the refused
	// ones arrived before it.
	sendRaw(t, "tcp", rs.SyslogAddr, "<14>Nov 24 10:00:01 web1 billing: still accepted\n")
	for {
		f := sse.NextRecord(t, recordTimeout).Fields(t)
		msg, _ := f["short_message"].(string)
		if strings.Contains(msg, "stranger") || strings.Contains(msg, "without a certificate") {
			t.Fatalf("a refused client's record arrived: %v", f)
		}
		if msg == "still accepted" {
			break
		}
	}
}

// nextRecordWith returns the next SSE record whose short_message is want,
// skipping others (rsyslog forwards its own start messages too).
func nextRecordWith(t *testing.T, sse *testsupport.SSEStream, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(recordTimeout)
	for time.Now().Before(deadline) {
		f := sse.NextRecord(t, time.Until(deadline)).Fields(t)
		if f["short_message"] == want {
			return f
		}
	}
	t.Fatalf("no record %q within %v", want, recordTimeout)
	return nil
}

// TestSyslogTLSOnly: with --syslog-addr none the daemon takes syslog over
// TLS only: no plain listener, and a record sent over TLS arrives.
func TestSyslogTLSOnly(t *testing.T) {
	ca := testsupport.NewCA(t, t.TempDir())
	cert, key := ca.ServerCert(t, "server")
	d := testsupport.StartDaemon(t, "--syslog-addr=none", "--syslog-tls-addr=127.0.0.1:0",
		"--syslog-tls-cert="+cert, "--syslog-tls-key="+key, "--dns=false")
	if strings.Contains(d.Stderr(), "syslog_tcp=") || strings.Contains(d.Stderr(), "syslog_udp=") {
		t.Fatalf("a plain syslog listener is open:\n%s", d.Stderr())
	}
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	c, err := tls.Dial("tcp", d.SyslogTLSAddr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	msg := "<14>1 - web-1 app - - - over tls only"
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	c.Close()
	if f := sse.NextRecord(t, recordTimeout).Fields(t); f["short_message"] != "over tls only" {
		t.Fatalf("record %v", f)
	}
}
