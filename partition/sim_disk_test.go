package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
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
// world's log, so the run's checks (porcupine, the final state, "not
// applied" answers) hold the owner to what its disk holds.

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
// lands after a delay; the answer comes back after another.
func (in *inst) appendDisk(g *core.Group) {
	w := in.w
	app := in.app
	w.after(w.dur(time.Millisecond, 8*time.Millisecond), func() {
		if in.killed {
			return // gone: nothing writes its disk
		}
		offs, err := app.Append(context.Background(), &g.Group)
		w.trace("i%d g%d %s: %v", in.id, g.N, groupSummary(g), err)
		w.after(w.dur(0, 2*time.Millisecond), func() { in.do(func() { in.d.Appended(g.N, offs, err) }) })
	})
}

// restoreDisk plays restore.go over the Disk: a new appender fences the
// older ones (or is refused after a failed sync: then the process restarts),
// the replay has nothing to do.
func (in *inst) restoreDisk() {
	w := in.w
	w.after(w.dur(0, 5*time.Millisecond), func() {
		if in.killed {
			return
		}
		app, err := in.disk.NewAppender(context.Background())
		if rerr := in.resyncCache(); rerr != nil {
			panic(rerr)
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
		in.app = app
		r := core.Restore{FencedAt: w.now, SkipLeaseWait: in.restores == 1 && (in.epoch == 1 || in.restarted)}
		if r.Clock, err = in.st.Clock(); err != nil {
			panic(err)
		}
		if r.Ingest, err = in.st.IngestOffsets(); err != nil {
			panic(err)
		}
		offs, _ := in.st.Offsets()
		if _, err := in.disk.Replay(context.Background(), offs, nil, nil); err != nil {
			panic(err)
		}
		in.publish(offs)
		in.do(func() { in.d.Restored(r) })
	})
}
