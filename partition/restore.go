package partition

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/internal/retry"
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
	p.restoreBegins()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if old != nil {
			old.Close()
		}
		res, err := retry.Forever(p.ctx, func() (restoreResult, error) {
			app, r, err := p.restore(p.ctx, first)
			if errors.Is(err, ErrDeposed) {
				r.Err = err
				return restoreResult{r: r}, nil
			}
			return restoreResult{app: app, r: r}, err
		}, func(err error, wait time.Duration) {
			p.cfg.Log.Error().Err(err).Dur("retry_in", wait).Msg("restore failed")
		})
		if err == nil {
			l.restored <- res
		}
	}()
}

// restore fences every older writer of the partition's slots, then its own
// transactional id (so the log's end can no longer move under it), then
// replays the log from the offsets the store has reached up to its committed
// end.
func (p *Partition) restore(ctx context.Context, first bool) (wal.Appender, core.Restore, error) {
	cfg := &p.cfg
	if cfg.Owns != nil {
		p.enter(RestoreRegistry)
		start := time.Now()
		if err := cfg.Owns(ctx); err != nil {
			return nil, core.Restore{}, err
		}
		cfg.Log.Info().Str("phase", RestoreRegistry.Step()).Dur("took", time.Since(start)).Msg("ownership confirmed in the registry")
	}
	p.enter(RestoreSnapshot)
	stored, handedOver, err := p.startingPoint(ctx)
	if err != nil {
		return nil, core.Restore{}, err
	}
	p.enter(RestoreFence)
	fenceStart := time.Now()
	app, err := cfg.WAL.NewAppender(ctx)
	if err != nil {
		return nil, core.Restore{}, fmt.Errorf("fencing: %w", err)
	}
	// Ownership again, now that this producer is fenced in: a partition
	// removed between the first check and its own fence (whose new owner
	// fenced it before that fence made it a fresh producer) learns it here;
	// any newer owner's fence comes after this one and fences it.
	if cfg.Owns != nil {
		if err := cfg.Owns(ctx); err != nil {
			app.Close()
			return nil, core.Restore{}, err
		}
	}
	fenced := time.Since(fenceStart)
	p.metrics.fenced(fenced)
	cfg.Log.Info().Str("phase", RestoreFence.Step()).Dur("took", fenced).Msg("fenced")
	// From here no older writer can commit: a deposed owner's lease ran from
	// its last commit, which was before now.
	r := core.Restore{FencedAt: time.Now(), SkipLeaseWait: first && (cfg.SkipLeaseWait || handedOver)}
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
	synced, err := p.syncedBefore(len(stored) == 0)
	if err != nil {
		return fail(err)
	}
	p.enter(RestoreReplay)
	prog := newProgress(p)
	// Fenced: the log's end no longer moves but by this partition, so once
	// the replay ends the store is in sync with the log as of now.
	replayed := time.Now()
	reached, err := cfg.WAL.Replay(ctx, from, func(b wal.Replayed) error {
		if err := applyBatch(cfg.Store, b, cfg.Epoch, &r.Clock, r.Ingest); err != nil {
			return err
		}
		prog.add(len(b.Records), b.Bytes, b.Lag)
		return nil
	}, p.waitingFor)
	if err != nil {
		return fail(err)
	}
	if err := p.replayedInTime(synced); err != nil {
		return fail(err)
	}
	if err := cfg.Store.Apply(kv.Write{SyncedAt: replayed.UnixMilli()}); err != nil {
		return fail(err)
	}
	prog.done()
	// The store now holds the log and the ingest topic this far: reads that
	// wait for an offset, and the ingest lag, need not wait for a first write.
	p.view.publish(from, maps.Clone(r.Ingest))
	p.view.publish(reached, nil)
	return app, r, nil
}

// startingPoint returns the offsets the replay starts from: the store's,
// unless it is too stale to replay onto (then it is emptied); an empty store
// is first filled from a snapshot if there is a Seed (handedOver: see Seed).
func (p *Partition) startingPoint(ctx context.Context) (stored map[int32]int64, handedOver bool, err error) {
	cfg := &p.cfg
	stored, err = cfg.Store.Offsets()
	p.foundCorrupt(err)
	cleared, cerr := p.discardCorrupt()
	if cerr != nil {
		return nil, false, cerr
	}
	if cleared {
		stored, err = nil, nil
	}
	if err != nil {
		return nil, false, err
	}
	if retention := cfg.WAL.Retention(); len(stored) > 0 && retention > 0 {
		cleared, err := clearIfStale(cfg.Store, retention, p.wallClock(), cfg.Log)
		if err != nil {
			return nil, false, err
		}
		if cleared {
			stored = nil
		}
	}
	if len(stored) == 0 && cfg.Seed != nil {
		start := time.Now()
		if handedOver, err = cfg.Seed(ctx); err != nil {
			return nil, false, fmt.Errorf("loading a snapshot: %w", err)
		}
		if stored, err = cfg.Store.Offsets(); err != nil {
			return nil, false, err
		}
		cfg.Log.Info().Str("phase", RestoreSnapshot.Step()).Bool("loaded", len(stored) > 0).Bool("handed_over", handedOver).Dur("took", time.Since(start)).Msg("snapshot phase done")
	}
	return stored, handedOver, nil
}

// syncedBefore returns when the store, about to be replayed onto, was last
// in sync with the log. An empty store is in sync now: Kafka keeps a
// tombstone for the retention after the cleaning that dropped the value it
// removed, so a replay from the log's start that ends within the retention
// either never reads that value or meets the tombstone.
func (p *Partition) syncedBefore(empty bool) (time.Time, error) {
	if empty {
		now := p.wallClock()
		return now, p.cfg.Store.Apply(kv.Write{SyncedAt: now.UnixMilli()})
	}
	at, err := p.cfg.Store.SyncedAt()
	return time.UnixMilli(at), err
}

// replayedInTime fails a replay that ended longer than the retention after
// the store was last in sync: tombstones written after that point may have
// been compacted away before the replay reached them. The store keeps its
// SyncedAt, so the restore tried again empties it first.
func (p *Partition) replayedInTime(synced time.Time) error {
	if r, took := p.cfg.WAL.Retention(), p.wallClock().Sub(synced); r > 0 && took > r {
		return fmt.Errorf("the replay ended %s after the store was last in sync with the changelog, longer than its delete.retention.ms (%s): "+
			"removals may have been compacted away before the replay reached them; restoring afresh (raise delete.retention.ms if restores take this long)",
			took.Round(time.Second), r)
	}
	return nil
}

// wallClock is the time of the retention checks.
func (p *Partition) wallClock() time.Time {
	if p.cfg.now != nil {
		return p.cfg.now()
	}
	return time.Now()
}

// clearIfStale empties st if it was last known in sync with the log longer
// than retention (the log's delete.retention.ms) ago: compaction may since
// have dropped tombstones a replay from st's offsets would need, so replaying
// onto it could bring removed keys back. A store that never recorded when
// it was in sync counts as stale. It reports whether it cleared st.
func clearIfStale(st store.Store, retention time.Duration, now time.Time, log zerolog.Logger) (bool, error) {
	at, err := st.SyncedAt()
	if err != nil {
		return false, err
	}
	age := now.Sub(time.UnixMilli(at))
	if at != 0 && age <= retention {
		return false, nil
	}
	ev := log.Warn().Dur("retention", retention).Int64("delete_retention_ms", retention.Milliseconds())
	if at == 0 {
		ev = ev.Str("synced_at", "unknown")
	} else {
		ev = ev.Time("synced_at", time.UnixMilli(at)).Dur("out_of_sync_for", age)
	}
	ev.Msgf("the store was last in sync with the changelog %s ago, longer than the changelog's delete.retention.ms (%s): "+
		"removals may have been compacted away, so it is emptied and restored afresh instead of replayed onto", ageText(at, age), retention)
	if err := st.Clear(); err != nil {
		return false, fmt.Errorf("emptying a stale store: %w", err)
	}
	return true, nil
}

func ageText(at int64, age time.Duration) string {
	if at == 0 {
		return "an unknown time"
	}
	return age.Round(time.Second).String()
}

// applyBatch applies a read of the log to st, with the offsets it reaches,
// in one write: changes, ingest marks (into ingest), heartbeats skipped. A
// record of an epoch above maxEpoch (0: no limit) is ErrDeposed: a newer owner
// wrote it. clock is raised to the highest stamp seen.
func applyBatch(st store.Store, b wal.Replayed, maxEpoch uint64, clock *uint64, ingest map[int32]int64) error {
	return applySynced(st, b, maxEpoch, clock, ingest, 0)
}

// applySynced is applyBatch that also stores syncedAt, if not 0, as the
// store's kv.Write.SyncedAt.
func applySynced(st store.Store, b wal.Replayed, maxEpoch uint64, clock *uint64, ingest map[int32]int64, syncedAt int64) error {
	sb := kv.Write{Changes: make([]kv.Change, 0, len(b.Records)), Offsets: b.Reached, Ingest: make(map[int32]int64), SyncedAt: syncedAt}
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
	p.state.restoring(func(s *State) { s.Percent = 0 })
	return &progress{p: p, start: now, logged: now}
}

func (g *progress) add(records int, bytes, lag int64) {
	g.records += int64(records)
	g.bytes += bytes
	g.p.metrics.restored(records, lag)
	g.p.state.restoring(func(s *State) {
		s.Lag = lag
		if total := g.records + lag; total > 0 {
			s.Percent = int(g.records * 100 / total)
		}
	})
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
	g.p.state.restoring(func(s *State) { s.Lag = 0 })
	elapsed := time.Since(g.start)
	g.p.cfg.Log.Info().Str("phase", RestoreReplay.Step()).Int64("records", g.records).Int64("bytes", g.bytes).Dur("took", elapsed).Msg("restored")
}
