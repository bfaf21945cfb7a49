// Package tlsfile serves a TLS certificate from PEM files and reloads it
// when the files change, so that a renewal by an ACME client or
// cert-manager needs no restart.
package tlsfile

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// checkEvery bounds how often the files are looked at: at most once per
// interval, on a handshake.
const checkEvery = time.Second

// Certificate is a certificate and key loaded from files, reloaded on the
// first handshake after either file changed. A pair that fails to load
// (a renewal half written) keeps the previous one in use, and is tried again
// at the next change.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]stamp
	checked time.Time
}

type stamp struct {
	mod  time.Time
	size int64
}

// Load reads the certificate and key at certFile and keyFile (PEM).
func Load(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	st, err := c.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s: %w", certFile, err)
	}
	c.cert, c.stamp, c.checked = &cert, st, time.Now()
	return c, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= checkEvery {
		c.checked = now
		c.reload()
	}
	return c.cert, nil
}

// reload loads the files again when they changed. c.mu is held.
func (c *Certificate) reload() {
	st, err := c.stamps()
	if err != nil || st == c.stamp {
		return
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.log.Warn("tls certificate not reloaded; the previous one stays in use",
			slog.String("cert", c.certFile), slog.Any("error", err))
		return
	}
	c.cert, c.stamp = &cert, st
	c.log.Info("tls certificate reloaded", slog.String("cert", c.certFile))
}

func (c *Certificate) stamps() ([2]stamp, error) {
	var out [2]stamp
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("tls certificate: %w", err)
		}
		out[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

// ServerConfig returns a TLS server configuration serving c (TLS 1.2 and
// later).
func (c *Certificate) ServerConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
}
