package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// resyncCache wraps a partition's NewAppender so that its write-through
// cache is provably current each time the partition is about to serve: once
// the new appender has fenced the older ones, nothing writes the durable
// store behind the cache's back any more, and the cache is made current
// (store.Cached.Resync).
//
//   - The first restore keeps the cache if it is still at the durable
//     store's offsets, ingest offsets and clock (OpenCached proved it so; a
//     snapshot loaded into an empty durable store since moves them).
//   - Every later one (a re-sync) drops it. A re-sync follows a write whose
//     outcome is unknown or a failed store read or write, and what the cache
//     holds then proves nothing: with --wal disk the group in flight, whose
//     requests got UNKNOWN, may be in the durable store without the cache
//     (the appender writes it there, the loop's apply that writes the cache
//     never came), an intent recovered by the new appender too, and a miss
//     may have filled the cache with a write whose sync failed. A cache
//     behind the durable store served a value it no longer held, and a CAS
//     against that value succeeded (issue 23.1).
//
// The drop happens also when the new appender is refused (after a failed
// sync): the cache must not keep what a miss read of an unsynced write.
func resyncCache(c *store.Cached, newAppender func(context.Context) (wal.Appender, error), log zerolog.Logger) func(context.Context) (wal.Appender, error) {
	var restores atomic.Int64
	return func(ctx context.Context) (wal.Appender, error) {
		app, err := newAppender(ctx)
		first := restores.Add(1) == 1
		kept, rerr := c.Resync(first)
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
