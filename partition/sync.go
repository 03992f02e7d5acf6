package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/store"
)

// sync restores the partition: fence older producers with a new appender first
// (so the changelog's end can no longer move under us), then replay the
// changelog from the offsets the store has reached up to its committed end.
func (p *Partition) sync(ctx context.Context) (syncResult, error) {
	cfg := &p.cfg
	if cfg.Owns != nil {
		if err := cfg.Owns(ctx); err != nil {
			return syncResult{}, err
		}
	}
	stored, err := cfg.Store.Offsets()
	if err != nil {
		return syncResult{}, err
	}
	if len(stored) == 0 && cfg.Seed != nil {
		if err := cfg.Seed(ctx); err != nil {
			return syncResult{}, fmt.Errorf("loading a snapshot: %w", err)
		}
		if stored, err = cfg.Store.Offsets(); err != nil {
			return syncResult{}, err
		}
	}
	fenced := time.Now()
	app, err := cfg.NewAppender(ctx)
	if err != nil {
		return syncResult{}, fmt.Errorf("fencing: %w", err)
	}
	// A deposed owner may answer reads for up to a lease after its last
	// commit, which was before this fencing: wait that out before serving.
	leaseOver := time.After(time.Until(fenced.Add(cfg.Lease)))
	clock, err := cfg.Store.Clock()
	if err != nil {
		app.Close()
		return syncResult{}, err
	}
	ingest, err := cfg.Store.IngestOffsets()
	if err != nil {
		app.Close()
		return syncResult{}, err
	}
	from := make(map[int32]int64, cfg.Range.Len())
	for _, slot := range cfg.Range.Slots() {
		from[slot] = stored[slot]
		ingest[slot] = max(ingest[slot], 0) // a slot never consumed starts at 0
	}
	prog := newProgress(p)
	_, err = cfg.Replay(ctx, from, func(b changelog.Batch) error {
		if err := applyBatch(cfg.Store, b, cfg.Epoch, &clock, ingest); err != nil {
			return err
		}
		prog.add(len(b.Records), b.Bytes, b.Lag)
		return nil
	})
	if err != nil {
		app.Close()
		return syncResult{}, err
	}
	prog.done()
	select {
	case <-leaseOver:
	case <-ctx.Done():
		app.Close()
		return syncResult{}, ctx.Err()
	}
	return syncResult{app: app, fenced: fenced, clock: clock, ingest: ingest}, nil
}

// applyBatch applies a fetch of the changelog to st, with the offsets it
// reaches, in one write: changes, ingest marks (into ingest), heartbeats
// skipped. A record of an epoch above maxEpoch (0: no limit) is ErrDeposed: a
// newer owner wrote it. clock is raised to the highest stamp seen.
func applyBatch(st store.Store, b changelog.Batch, maxEpoch uint64, clock *uint64, ingest map[int32]int64) error {
	sb := store.Batch{Changes: make([]store.Change, 0, len(b.Records)), Offsets: b.Reached, Ingest: make(map[int32]int64)}
	for _, r := range b.Records {
		c, err := changelog.Decode(r)
		if err != nil {
			return err
		}
		if maxEpoch != 0 && c.Epoch > maxEpoch {
			return fmt.Errorf("%w: slot %d offset %d was written at epoch %d, this owner has epoch %d", ErrDeposed, r.Partition, r.Offset, c.Epoch, maxEpoch)
		}
		switch {
		case c.Heartbeat:
		case c.Mark:
			sb.Ingest[c.IngestSlot] = c.IngestOffset
			if ingest != nil {
				ingest[c.IngestSlot] = c.IngestOffset
			}
		default:
			sb.Changes = append(sb.Changes, store.Change{Key: c.Key, Value: c.Value, Remove: c.Remove, Version: c.Version, Timestamp: c.Timestamp, ExpiresAt: c.ExpiresAt})
			*clock = max(*clock, c.Timestamp)
		}
	}
	sb.Clock = *clock
	return st.Apply(sb)
}

// progress reports a restore: a log line at least every 5 seconds with records
// and bytes done, rate and ETA, and the percent callers see in RestoringError.
type progress struct {
	p              *Partition
	start, logged  time.Time
	records, bytes int64
}

func newProgress(p *Partition) *progress {
	now := time.Now()
	p.progress.Store(0)
	return &progress{p: p, start: now, logged: now}
}

func (g *progress) add(records int, bytes, lag int64) {
	g.records += int64(records)
	g.bytes += bytes
	g.p.metrics.restored(records, lag)
	g.p.lag.Store(lag)
	if total := g.records + lag; total > 0 {
		g.p.progress.Store(int32(g.records * 100 / total))
	}
	if time.Since(g.logged) < 5*time.Second {
		return
	}
	g.logged = time.Now()
	elapsed := time.Since(g.start).Seconds()
	rate := float64(g.records) / elapsed
	eta := time.Duration(0)
	if rate > 0 {
		eta = time.Duration(float64(lag) / rate * float64(time.Second))
	}
	g.p.cfg.Log.Info().Int64("records", g.records).Int64("bytes", g.bytes).
		Float64("records_per_sec", rate).Int64("lag", lag).Dur("eta", eta).Msg("restoring")
}

func (g *progress) done() {
	g.p.lag.Store(0)
	elapsed := time.Since(g.start)
	g.p.cfg.Log.Info().Int64("records", g.records).Int64("bytes", g.bytes).Dur("took", elapsed).Msg("restored")
}
