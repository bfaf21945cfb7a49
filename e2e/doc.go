// Package e2e holds end-to-end tests: they build and start the real daemon
// and talk to it with real clients (python3's SysLogHandler, logger, HTTP,
// WebSocket, Chromium), and start real redis-server and rsyslogd processes.
package e2e
