package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
	"github.com/sluicedb/sluice/wal/local"
)

// --wal disk under the simulator: each owner runs wal/local's Disk (its
// appender writes each group's store batch, synced; the loop's apply of it
// is skipped) over the owner's store with faults: a synced write that fails
// (written or not: its outcome is unknown) and a store read that fails. A
// failed sync leaves the Disk refusing appenders until the process restarts
// and reopens its store, which the simulator then does, as a supervisor
// would. What the store holds after each synced write is recorded in the
// world's log, so the run's checks ("not applied" answers, reads that skip
// the inbox) hold the owner to what its disk holds. The partition moves:
// the new owner, on an empty disk of its own, is seeded through the bucket
// from the old owner's final snapshot, taken when the old one closes after
// the move (node's handOff), as sim_handoff_test.go plays it; a kill -9
// restarts the owner on its own disk, in its era, losing nothing
// acknowledged.

// simDurable is an owner's store as the Disk writes it (local.Durable).
type simDurable struct{ in *inst }

func (s simDurable) ApplyAtomic(b kv.Write) error {
	w := s.in.w
	if s.in.killed {
		return fmt.Errorf("%w: the process was killed", store.ErrNotWritten)
	}
	if w.chance(w.faults.syncFail) {
		w.injected["sync-fail"]++
		if w.chance(0.5) {
			if err := s.write(b); err != nil {
				return err
			}
		}
		return errors.New("fsync: input/output error")
	}
	return s.write(b)
}

// write applies b to the store and records its changes as the durable log.
func (s simDurable) write(b kv.Write) error {
	if err := s.in.st.Apply(b); err != nil {
		return err
	}
	l := s.in.w.log
	for _, c := range b.Changes {
		slot := keyspace.Slot(c.Key, simSlots)
		l.slots[slot] = append(l.slots[slot], wal.Positioned{Record: kv.Record{Kind: kv.KindChange, Slot: slot, Change: c}, Offset: int64(len(l.slots[slot]))})
	}
	return nil
}

func (s simDurable) RecoverIntent() error { return nil }

func (s simDurable) Get(key []byte) (kv.Read, error) { return s.in.st.Get(key) }

func (s simDurable) GetMany(keys [][]byte) ([]kv.Read, error) {
	w := s.in.w
	if w.chance(w.faults.readFail) {
		w.injected["read-fail"]++
		return nil, errors.New("read: input/output error")
	}
	return s.in.st.GetMany(keys)
}

func (s simDurable) GetManyWithin(keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
	return s.in.st.GetManyWithin(keys, b)
}

// Apply is the write of a store that is not the log: kafka+cached's durable
// store under the cache, which fails now and then (a full disk).
func (s simDurable) Apply(b kv.Write) error {
	w := s.in.w
	if s.in.cached != nil && s.in.disk == nil && w.chance(w.faults.applyFail) {
		w.injected["durable-apply-fail"]++
		return errors.New("disk full")
	}
	return s.in.st.Apply(b)
}
func (s simDurable) Offsets() (map[int32]int64, error)               { return s.in.st.Offsets() }
func (s simDurable) IngestOffsets() (map[int32]int64, error)         { return s.in.st.IngestOffsets() }
func (s simDurable) Clock() (uint64, error)                          { return s.in.st.Clock() }
func (s simDurable) SyncedAt() (int64, error)                        { return s.in.st.SyncedAt() }
func (s simDurable) Clear() error                                    { return s.in.st.Clear() }
func (s simDurable) Len() (int, error)                               { return s.in.st.Len() }
func (s simDurable) Each(fn func(key []byte, v kv.Value) bool) error { return s.in.st.Each(fn) }
func (s simDurable) Scan(start, end []byte, fn func(key []byte, v kv.Value) bool) error {
	return s.in.st.Scan(start, end, fn)
}
func (s simDurable) Close() error { return nil }

// appendDisk plays the flusher over the Disk's appender: the synced write
// lands after a delay, under the ownership lease (the registry must still
// name this owner; nothing fences a local log); the answer comes back after
// another.
func (in *inst) appendDisk(g *core.Group) {
	w := in.w
	app := in.app
	w.after(w.dur(time.Millisecond, 8*time.Millisecond), func() {
		if in.killed {
			return // gone: nothing writes its disk
		}
		var offs []int64
		var err error
		if w.epoch != in.epoch {
			err = fmt.Errorf("%w: the ownership lease is lost: the registry has epoch %d", wal.ErrNotCommitted, w.epoch)
		} else {
			offs, err = app.Append(context.Background(), &g.Group)
		}
		w.trace("i%d g%d %s: %v", in.id, g.N, groupSummary(g), err)
		// As appendNone: the replies were decided at the ownership check.
		checked := w.now
		w.after(w.dur(0, 2*time.Millisecond), func() {
			in.do(func() {
				in.decidedAt = checked
				in.d.Appended(g.N, offs, err)
				in.decidedAt = time.Time{}
			})
		})
	})
}

// restoreDisk plays restore.go over the Disk: the registry says whether
// this instance still owns the partition; an empty store (a new owner) is
// seeded from the bucket (sim_handoff_test.go); then a new appender fences
// the older ones (or is refused after a failed sync: then the process
// restarts); the replay has nothing to do.
func (in *inst) restoreDisk() {
	w := in.w
	w.after(w.dur(0, 5*time.Millisecond), func() {
		if in.killed {
			return
		}
		if w.epoch != in.epoch {
			in.deposed(fmt.Errorf("the registry has epoch %d", w.epoch))
			return
		}
		// An empty store is seeded at every restore, as node's
		// (partition/restore.go's startingPoint).
		if offs, _ := in.st.Offsets(); len(offs) == 0 {
			in.seed(in.appenderDisk, in.restoreDisk)
			return
		}
		in.appenderDisk(false)
	})
}

// appenderDisk makes the Disk's appender, claims the partition in the
// bucket (a failed claim fails the restore, as in node/modes.go: an owner
// that served unclaimed would be skipped by the next owner's seed), makes
// the cache current, asks the registry again, and reports the restore.
func (in *inst) appenderDisk(handedOver bool) {
	w := in.w
	app, err := in.disk.NewAppender(context.Background())
	if err == nil {
		if cerr := in.claim(); cerr != nil { // the restore fails, and is retried
			app.Close()
			app, err = nil, cerr
		}
	}
	if rerr := in.resyncCache(); rerr != nil {
		panic(rerr)
	}
	if errors.Is(err, snapshot.ErrNewerOwner) {
		in.deposed(err)
		return
	}
	if err != nil {
		w.trace("i%d restore: %v", in.id, err)
		if errors.Is(err, local.ErrSyncFailed) && w.owner == in {
			w.after(w.dur(10*time.Millisecond, 100*time.Millisecond), func() {
				if w.owner == in && !in.killed {
					w.restart("restart-after-sync-fail")
				}
			})
			return
		}
		w.after(10*time.Millisecond, in.restoreDisk)
		return
	}
	if w.epoch != in.epoch { // ownership again, now that its appender fenced the older ones
		app.Close()
		in.deposed(fmt.Errorf("the registry has epoch %d", w.epoch))
		return
	}
	in.app = app
	r, offs := in.localRestore(handedOver)
	if _, err := in.disk.Replay(context.Background(), offs, nil, nil); err != nil {
		panic(err)
	}
	in.publish(offs)
	in.do(func() { in.d.Restored(r) })
}
