// Package local holds the write-ahead logs that live on the node itself,
// for partitions that need no Kafka:
//
//   - Disk (--wal disk): the partition's own Badger database on a managed
//     disk is the log. A group is durable once its store batch (changes, the
//     next offset of every slot, ingest marks, clock) is written in one
//     synced, whole-or-absent write; the loop's later Apply of that group is
//     a no-op. Replay has nothing to do.
//   - None (--wal none): no log at all. Appends number the records in
//     memory and are committed at once; durability is the memory store's
//     periodic backups.
//
// Offsets are sequence numbers per slot, stored with the data as the Kafka
// offsets are in --wal kafka, so session tokens and restores work the same.
//
// Both are a wal.Log: their Replay has nothing to do, and nothing compacts
// them (Retention 0).
//
//	log := local.NewDisk(st)                 // st opened with store.DurableBadgerOptions
//	cfg.Store, cfg.WAL = log.Store(), log
package local

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// ErrFenced fails an Append of an appender a newer one replaced (a re-sync
// made a new one); ErrIngest one of a group with dead letters or forwards,
// which only the Kafka log can carry.
var (
	ErrFenced = errors.New("wal/local: appender replaced by a newer one")
	ErrIngest = errors.New("wal/local: ingest dead letters and forwards need --wal kafka")
	// ErrSyncFailed refuses a new appender of a Disk whose store failed a
	// write's sync: the partition serves nothing until its store is reopened.
	ErrSyncFailed = errors.New("wal/local: a sync of the partition's store failed; what was written after the last successful sync may not be on the disk, so the partition serves nothing until the node restarts and reopens the store from the disk")
)

var (
	_ wal.Log = (*Disk)(nil)
	_ wal.Log = (*None)(nil)
)

// Replay of a local log: the store is the log, so there is nothing after
// its offsets.
func (d *Disk) Replay(_ context.Context, from map[int32]int64, _ func(wal.Replayed) error, _ func(string)) (map[int32]int64, error) {
	return from, nil
}

// Retention: nothing compacts the log under the store (it is the store).
func (d *Disk) Retention() time.Duration { return 0 }

// Replay of no log: the store is all there is.
func (n *None) Replay(_ context.Context, from map[int32]int64, _ func(wal.Replayed) error, _ func(string)) (map[int32]int64, error) {
	return from, nil
}

// Retention: there is no log to compact.
func (n *None) Retention() time.Duration { return 0 }

// sequence numbers one appender's records per slot.
type sequence struct {
	next map[int32]int64
}

// number gives g's records their offsets and builds the store batch the
// group makes (what core.Group.StoreWrite builds once it committed). Nothing
// changes until commit is called.
func (s *sequence) number(g *wal.Group) ([]int64, kv.Write, error) {
	if len(g.DeadLetters) > 0 || len(g.Forwards) > 0 {
		return nil, kv.Write{}, fmt.Errorf("%w: %w: %w", wal.ErrNotCommitted, wal.ErrPermanent, ErrIngest)
	}
	offsets := make([]int64, len(g.Records))
	b := kv.Write{Changes: make([]kv.Change, 0, len(g.Records)), Offsets: map[int32]int64{}}
	for i, r := range g.Records {
		next, ok := b.Offsets[r.Slot]
		if !ok {
			next = s.next[r.Slot]
		}
		offsets[i] = next
		b.Offsets[r.Slot] = next + 1
		b.Clock = max(b.Clock, r.Change.Timestamp)
		switch r.Kind {
		case kv.KindChange:
			b.Changes = append(b.Changes, r.Change)
		case kv.KindMark:
			if b.Ingest == nil {
				b.Ingest = map[int32]int64{}
			}
			b.Ingest[r.Ingest.Slot] = r.Ingest.Offset
		}
	}
	return offsets, b, nil
}

// commit records that b's offsets are taken.
func (s *sequence) commit(b kv.Write) {
	for slot, next := range b.Offsets {
		s.next[slot] = next
	}
}
