package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// idleDialers bounds the idle clients connecting at once, so the daemon's
// listen backlog does not overflow.
const idleDialers = 64

// openIdleClients opens n SSE streams (http:// URL) or WebSocket streams
// (ws:// URL) on rawURL that stay connected and are never read after the
// response header: they measure what a connected client costs the daemon. Raw TCP with a hand-written request keeps each
// one at a socket and a few hundred bytes here. It returns the open
// connections (the caller closes them) and the first error seen.
func openIdleClients(ctx context.Context, rawURL string, n int) ([]net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("idle url %s: %w", rawURL, err)
	}
	var req []byte
	status := "HTTP/1.1 200"
	switch u.Scheme {
	case "http":
		req = []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
			"\r\nAccept: text/event-stream\r\nUser-Agent: logbench-idle\r\n\r\n")
	case "ws":
		// The key is fixed: nothing here checks the accept value.
		req = []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
			"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
			"\r\nSec-WebSocket-Key: bG9nYmVuY2gtaWRsZS0xNg==\r\nUser-Agent: logbench-idle\r\n\r\n")
		status = "HTTP/1.1 101"
	default:
		return nil, fmt.Errorf("idle url %s: want http:// (SSE) or ws:// (WebSocket)", rawURL)
	}

	conns := make([]net.Conn, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, idleDialers)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := openIdle(ctx, u.Host, req, status)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, firstErr
}

// openIdle connects one client and waits for a response header with the
// given status line prefix.
func openIdle(ctx context.Context, host string, req []byte, status string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("idle dial %s: %w", host, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, fmt.Errorf("idle request: %w", err)
	}
	var head [1024]byte
	got := 0
	for !bytes.Contains(head[:got], []byte("\r\n\r\n")) {
		if got == len(head) {
			c.Close()
			return nil, fmt.Errorf("idle response header over %d bytes", len(head))
		}
		m, err := c.Read(head[got:])
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("idle response: %w", err)
		}
		got += m
	}
	if !bytes.HasPrefix(head[:got], []byte(status)) {
		c.Close()
		line, _, _ := bytes.Cut(head[:got], []byte("\r\n"))
		return nil, fmt.Errorf("idle response: %q", line)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
