//go:build deps

// Package internal pins the module's dependencies while the packages that use
// them are being written; removed once every one is imported for real.
package internal

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/coder/websocket"
	_ "github.com/leodido/go-syslog/v4/rfc3164"
	_ "github.com/leodido/go-syslog/v4/rfc5424"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/sync/errgroup"
)
