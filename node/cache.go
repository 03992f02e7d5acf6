package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// resyncCache wraps a partition's NewAppender so that its write-through
// cache is made current after each new appender, or its refusal
// (store.Cached.AtRestore: the process's first restore may keep the cache,
// every later one drops it).
func resyncCache(c *store.Cached, newAppender func(context.Context) (wal.Appender, error), log zerolog.Logger) func(context.Context) (wal.Appender, error) {
	return func(ctx context.Context) (wal.Appender, error) {
		app, err := newAppender(ctx)
		kept, first, rerr := c.AtRestore()
		if rerr != nil {
			if app != nil {
				app.Close()
			}
			return nil, errors.Join(err, fmt.Errorf("making the write-through cache current: %w", rerr))
		}
		if !kept {
			cause := "re-sync"
			if first {
				cause = "the durable store moved since the cache was opened (a snapshot loaded)"
			}
			log.Info().Str("cause", cause).Msg("write-through cache dropped")
		}
		return app, err
	}
}
