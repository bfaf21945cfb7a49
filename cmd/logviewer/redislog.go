package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// redisLogger routes go-redis's own messages to the daemon's structured log
// instead of the standard logger.
type redisLogger struct{ log *slog.Logger }

// Printf logs one go-redis message: a failed dial at debug level, since the
// bus reports the same error itself, at most once a second and with what it
// keeps meanwhile; anything else at warn level.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	level := slog.LevelWarn
	if strings.Contains(msg, "failed to dial") {
		level = slog.LevelDebug
	}
	l.log.Log(ctx, level, msg)
}
