package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRedisLoggerLevels(t *testing.T) {
	tests := []struct {
		name   string
		format string
		args   []any
		want   string // the line's level and message
	}{
		{
			name:   "a failed dial is debug: the bus reports it itself, rate-limited",
			format: "redis: connection pool: failed to dial after %d attempts: %v",
			args:   []any{1, "dial tcp 127.0.0.1:6379: connect: connection refused"},
			want:   `level=DEBUG msg="redis: connection pool: failed to dial after 1 attempts: dial tcp`,
		},
		{
			name:   "anything else stays a warning",
			format: "redis: discarding bad PubSub connection: %v",
			args:   []any{"EOF"},
			want:   `level=WARN msg="redis: discarding bad PubSub connection: EOF"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			redisLogger{log: log}.Printf(context.Background(), tc.format, tc.args...)
			if got := buf.String(); !strings.Contains(got, tc.want) {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
		})
	}
}
