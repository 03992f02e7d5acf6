package snapshot

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Seed loads the empty store of a new owner of a partition with no log to
// replay (--wal disk or none) from the bucket, as decisions taken one Step
// at a time. It reads no clock and starts no goroutine: its caller gives it
// the time at each Step and waits SeedPoll between Steps (node/backups.go
// with a timer; the partition simulator in simulated time), so both run
// this one rule:
//
//  1. The partition's owner record (handoff.go) names an older owner that
//     has not finished: it may be handing the partition over right now.
//     Wait for its final snapshot, up to Timeout; then go on without it
//     (what it acknowledged after its newest snapshot is lost).
//  2. Restore the newest valid snapshot of the partition (restore.go).
//  3. None: a new partition. Partitions removed before it over its slots
//     may still be uploading their final snapshots (a removal closed them a
//     moment ago): wait for them, up to Timeout, then carry their slots'
//     data over (carry.go): the data follows the slots, as the changelog
//     does with --wal kafka.
//
// A bucket that fails fails the Step: the caller retries the whole seed
// with a new Seed. Starting empty would lose everything, and backups of the
// empty state would then push the good ones out of the bucket.
type Seed struct {
	Bucket *Bucket
	// Want is the partition, its range and the cluster's slot count
	// (MaxAge 0: no changelog, no retention to respect).
	Want Want
	// Epoch is the new owner's.
	Epoch uint64
	// Timeout bounds each wait for a previous owner's final snapshot
	// (node's HandoffTimeout).
	Timeout time.Duration
	// Work is a local folder the snapshots are downloaded into.
	Work string
	Log  zerolog.Logger

	carrying bool // past the restore: waiting for removed partitions over the slots
	deadline time.Time
	logged   time.Time
}

// SeedPoll is how long a caller waits between two Steps that did not finish.
const SeedPoll = 200 * time.Millisecond

// seedLogEvery is how often a wait is logged.
const seedLogEvery = 5 * time.Second

// Step takes the seed's next step at now, loading st (empty). done says the
// seed is over; otherwise Step again after SeedPoll. handedOver says the
// snapshot restored was the final one of the owner of the epoch just before
// this one: that owner stopped serving before its final snapshot, and it
// alone held that epoch (any owner before it was waited out by it), so no
// process can still answer for the partition and the new owner need not
// wait out the ownership lease (a planned move takes a moment, not 10 s).
func (s *Seed) Step(ctx context.Context, now time.Time, st Target) (done, handedOver bool, err error) {
	if s.deadline.IsZero() {
		s.deadline = now.Add(s.Timeout)
	}
	if s.carrying {
		return s.carry(ctx, now, st)
	}
	o, ok, err := s.Bucket.Owner(ctx, s.Want.Partition)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return false, false, err
	}
	if err == nil && ok && !o.Final && o.Epoch < s.Epoch {
		if !now.After(s.deadline) {
			if now.Sub(s.logged) > seedLogEvery {
				s.logged = now
				s.Log.Info().Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Msg("waiting for the previous owner's final snapshot")
			}
			return false, false, nil
		}
		s.Log.Warn().Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Dur("waited", s.Timeout).
			Msg("the previous owner's final snapshot did not come: restoring the newest one; what it acknowledged after that is lost")
	}
	handedOver = err == nil && ok && o.Final && o.Epoch+1 == s.Epoch
	_, restored, err := s.Bucket.Restore(ctx, s.Want, st, s.Work, s.Log)
	if err != nil {
		return false, false, err
	}
	if restored {
		return true, handedOver, nil
	}
	s.carrying, s.deadline, s.logged = true, now.Add(s.Timeout), time.Time{}
	return s.carry(ctx, now, st)
}

// carry waits for the final snapshots of removed partitions over the slots
// (up to Timeout), then carries their data over.
func (s *Seed) carry(ctx context.Context, now time.Time, st Target) (done, handedOver bool, err error) {
	pending, err := s.Bucket.Unfinished(ctx, s.Want, s.Epoch)
	if err != nil {
		return false, false, err
	}
	if len(pending) > 0 {
		if !now.After(s.deadline) {
			if now.Sub(s.logged) > seedLogEvery {
				s.logged = now
				for id, o := range pending {
					s.Log.Info().Uint32("previous_partition", id).Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Msg("waiting for the final snapshot of a removed partition over these slots")
				}
			}
			return false, false, nil
		}
		for id, o := range pending {
			s.Log.Warn().Uint32("previous_partition", id).Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Dur("waited", s.Timeout).
				Msg("a removed partition over these slots never uploaded its final snapshot: carrying its newest one over; what it acknowledged after that is lost")
		}
	}
	if _, err := s.Bucket.Carry(ctx, s.Want, st, s.Work, s.Log); err != nil {
		return false, false, err
	}
	return true, false, nil
}
