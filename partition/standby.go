package partition

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// StandbyConfig describes a standby replica of a partition.
type StandbyConfig struct {
	ID    uint32
	Range keyspace.Range
	// Epoch is the partition's epoch when the standby started (for its log).
	Epoch uint64
	// Store is the standby's own copy; the standby does not close it (on a
	// handover the new owner's partition opens on it and replays only the tail).
	Store store.Store
	// Tail follows the log from the given next offsets until ctx ends.
	Tail wal.TailFunc
	Log  zerolog.Logger
	// Retention is the log's tombstone retention: a store last in sync
	// longer ago is emptied and tailed from the start (Config.Retention).
	Retention time.Duration
}

// Standby tails a partition's changelog into its own store and serves
// EVENTUAL and SESSION reads from it once it has caught up (CaughtUp). It
// only ever sees committed records (read_committed), so it never returns a
// value that is not durable.
type Standby struct {
	view
	cfg  StandbyConfig
	stop context.CancelFunc
	done chan struct{}
	// caughtUp: the store reached the log's end as it was when the tail
	// began, since the store was last emptied.
	caughtUp atomic.Bool
}

// StartStandby starts tailing from the offsets the store holds.
func StartStandby(cfg StandbyConfig) *Standby {
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Log = cfg.Log.With().Uint32("partition", cfg.ID).Uint64("epoch", cfg.Epoch).Str("role", "standby").Logger()
	s := &Standby{cfg: cfg, stop: cancel, done: make(chan struct{})}
	s.view = view{st: cfg.Store, done: s.done}
	go s.run(ctx)
	return s
}

func (s *Standby) run(ctx context.Context) {
	defer close(s.done)
	// Tailing ends only with ctx; any other end is retried.
	_, _ = retry.Forever(ctx, func() (struct{}, error) { return struct{}{}, s.follow(ctx) }, func(err error, wait time.Duration) {
		s.cfg.Log.Error().Err(err).Dur("retry_in", wait).Msg("standby stopped tailing")
	})
}

func (s *Standby) follow(ctx context.Context) error {
	stored, err := s.cfg.Store.Offsets()
	if err != nil {
		return err
	}
	if len(stored) > 0 && s.cfg.Retention > 0 {
		cleared, err := clearIfStale(s.cfg.Store, s.cfg.Retention, time.Now(), s.cfg.Log)
		if err != nil {
			return err
		}
		if cleared {
			stored = nil
			s.caughtUp.Store(false)
			s.applied.Store(nil) // what it published is gone: SESSION reads wait again
		}
	}
	if len(stored) == 0 { // a tail from the log's start sees every live tombstone
		if err := s.cfg.Store.Apply(kv.Write{SyncedAt: time.Now().UnixMilli()}); err != nil {
			return err
		}
	}
	from := make(map[int32]int64, s.cfg.Range.Len())
	for _, slot := range s.cfg.Range.Slots() {
		from[slot] = stored[slot]
	}
	s.publish(from, nil)
	clock, err := s.cfg.Store.Clock()
	if err != nil {
		return err
	}
	return s.cfg.Tail(ctx, from, func(b wal.Replayed) error {
		var synced int64
		if b.Lag == 0 { // caught up with the log as the tail found it
			synced = time.Now().UnixMilli()
		}
		if err := applySynced(s.cfg.Store, b, 0, &clock, nil, synced); err != nil {
			return err
		}
		s.publish(b.Reached, nil)
		if b.Lag == 0 {
			s.caughtUp.Store(true)
		}
		return nil
	})
}

// CaughtUp reports whether the standby may serve reads: its store has
// reached the changelog's end as it was when the standby began to tail it.
// Before that, a new standby (an empty store, or one far behind) would answer
// "absent" for keys the partition has long held. It stays true while the
// standby follows the log (EVENTUAL allows a replica to be behind), until
// its store is emptied (a stale one). Safe from any goroutine.
func (s *Standby) CaughtUp() bool { return s.caughtUp.Load() }

// Behind is how many changelog offsets (commit markers included) the
// standby has not applied yet, given the log's committed end per slot: how
// far behind the owner a SESSION or EVENTUAL read from it may be. Safe from
// any goroutine.
func (s *Standby) Behind(ends map[int32]int64) int64 {
	applied := s.Applied()
	var n int64
	for _, slot := range s.cfg.Range.Slots() {
		if end, ok := ends[slot]; ok {
			n += max(end-applied[slot], 0)
		}
	}
	return n
}

// Close stops tailing (the store stays open: see StandbyConfig.Store).
func (s *Standby) Close() {
	s.stop()
	<-s.done
}
