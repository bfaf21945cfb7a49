package main

import (
	"context"
	"fmt"
	"log/slog"
)

// redisLogger routes go-redis's own messages (failed dials during an outage)
// to the daemon's structured log instead of the standard logger.
type redisLogger struct{ log *slog.Logger }

// Printf logs one go-redis message at warn level.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
