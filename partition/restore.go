package partition

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// startRestore retires the appender and its flusher and restores in the
// background, retrying with backoff until it succeeds, finds the partition
// deposed, or the partition stops.
func (l *loop) startRestore() {
	p := l.p
	l.stopFlusher()
	old := l.app
	l.app = nil
	l.restores++
	first := l.restores == 1
	l.phases.begin(l.restores)
	p.versions.reset()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if old != nil {
			old.Close()
		}
		for attempt := 0; ; attempt++ {
			app, r, err := p.restore(p.ctx, first)
			if err == nil || errors.Is(err, ErrDeposed) {
				r.Err = err
				l.restored <- restoreResult{app: app, r: r}
				return
			}
			if p.ctx.Err() != nil {
				return
			}
			wait := backoff(attempt)
			p.cfg.Log.Error().Err(err).Dur("retry_in", wait).Msg("restore failed")
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
				return
			}
		}
	}()
}

// backoff is the wait before retry attempt+1: 200 ms doubling to 5 s.
func backoff(attempt int) time.Duration {
	return min(time.Duration(1<<min(attempt, 5))*200*time.Millisecond, 5*time.Second)
}

// restore fences every older writer of the partition's slots, then its own
// transactional id (so the log's end can no longer move under it), then
// replays the log from the offsets the store has reached up to its committed
// end.
func (p *Partition) restore(ctx context.Context, first bool) (wal.Appender, core.Restore, error) {
	cfg := &p.cfg
	if cfg.Owns != nil {
		start := time.Now()
		if err := cfg.Owns(ctx); err != nil {
			return nil, core.Restore{}, err
		}
		cfg.Log.Info().Str("phase", "registry").Dur("took", time.Since(start)).Msg("ownership confirmed in the registry")
	}
	stored, err := cfg.Store.Offsets()
	if err != nil {
		return nil, core.Restore{}, err
	}
	if len(stored) == 0 && cfg.Seed != nil {
		start := time.Now()
		if err := cfg.Seed(ctx); err != nil {
			return nil, core.Restore{}, fmt.Errorf("loading a snapshot: %w", err)
		}
		if stored, err = cfg.Store.Offsets(); err != nil {
			return nil, core.Restore{}, err
		}
		cfg.Log.Info().Str("phase", "snapshot").Bool("loaded", len(stored) > 0).Dur("took", time.Since(start)).Msg("snapshot phase done")
	}
	fenceStart := time.Now()
	if cfg.FenceOthers != nil {
		if err := cfg.FenceOthers(ctx); err != nil {
			return nil, core.Restore{}, fmt.Errorf("fencing older writers of the slots: %w", err)
		}
	}
	app, err := cfg.NewAppender(ctx)
	if err != nil {
		return nil, core.Restore{}, fmt.Errorf("fencing: %w", err)
	}
	fenced := time.Since(fenceStart)
	p.metrics.fenced(fenced)
	cfg.Log.Info().Str("phase", "fence").Dur("took", fenced).Msg("fenced")
	// From here no older writer can commit: a deposed owner's lease ran from
	// its last commit, which was before now.
	r := core.Restore{FencedAt: time.Now(), SkipLeaseWait: first && cfg.SkipLeaseWait}
	fail := func(err error) (wal.Appender, core.Restore, error) {
		app.Close()
		return nil, core.Restore{}, err
	}
	if r.Clock, err = cfg.Store.Clock(); err != nil {
		return fail(err)
	}
	if r.Ingest, err = cfg.Store.IngestOffsets(); err != nil {
		return fail(err)
	}
	from := make(map[int32]int64, cfg.Range.Len())
	for _, slot := range cfg.Range.Slots() {
		from[slot] = stored[slot]
		r.Ingest[slot] = max(r.Ingest[slot], 0) // a slot never consumed starts at 0
	}
	prog := newProgress(p)
	reached, err := cfg.Replay(ctx, from, func(b wal.Batch) error {
		if err := applyBatch(cfg.Store, b, cfg.Epoch, &r.Clock, r.Ingest); err != nil {
			return err
		}
		prog.add(len(b.Records), b.Bytes, b.Lag)
		return nil
	})
	if err != nil {
		return fail(err)
	}
	prog.done()
	// The store now holds the log and the ingest topic this far: reads that
	// wait for an offset, and the ingest lag, need not wait for a first write.
	p.view.publish(from, maps.Clone(r.Ingest))
	p.view.publish(reached, nil)
	return app, r, nil
}

// applyBatch applies a read of the log to st, with the offsets it reaches,
// in one write: changes, ingest marks (into ingest), heartbeats skipped. A
// record of an epoch above maxEpoch (0: no limit) is ErrDeposed: a newer owner
// wrote it. clock is raised to the highest stamp seen.
func applyBatch(st store.Store, b wal.Batch, maxEpoch uint64, clock *uint64, ingest map[int32]int64) error {
	sb := kv.Batch{Changes: make([]kv.Change, 0, len(b.Records)), Offsets: b.Reached, Ingest: make(map[int32]int64)}
	for _, r := range b.Records {
		if maxEpoch != 0 && r.Epoch > maxEpoch {
			return fmt.Errorf("%w: slot %d offset %d was written at epoch %d, this owner has epoch %d", ErrDeposed, r.Slot, r.Offset, r.Epoch, maxEpoch)
		}
		switch r.Kind {
		case kv.KindMark:
			sb.Ingest[r.Ingest.Slot] = r.Ingest.Offset
			if ingest != nil {
				ingest[r.Ingest.Slot] = r.Ingest.Offset
			}
		case kv.KindChange:
			sb.Changes = append(sb.Changes, r.Change)
			*clock = max(*clock, r.Change.Timestamp)
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
	g.p.cfg.Log.Info().Str("phase", "replay").Int64("records", g.records).Int64("bytes", g.bytes).Dur("took", elapsed).Msg("restored")
}
