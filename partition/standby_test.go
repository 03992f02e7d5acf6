package partition

import (
	"context"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// A standby serves reads only once its store has reached the log's end as
// its tail found it: an empty standby that had read part of the log would
// answer "absent" for keys the partition has long held.
func TestStandbyCatchesUpBeforeItServes(t *testing.T) {
	slot := keyspace.Slot([]byte("old"), 4)
	change := func(key string, off int64) wal.Positioned {
		return wal.Positioned{Offset: off, Record: kv.Record{Kind: kv.KindChange, Slot: slot, Epoch: 1,
			Change: kv.Change{Key: []byte(key), Value: []byte("v"), Version: 1, Timestamp: uint64(off + 1)}}}
	}
	steps := make(chan wal.Replayed)
	st := store.NewMemory()
	sb := StartStandby(StandbyConfig{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Store: st,
		Tail: func(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error) error {
			for {
				select {
				case b := <-steps:
					if err := fn(b); err != nil {
						return err
					}
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}})
	defer sb.Close()
	if sb.CaughtUp() {
		t.Fatal("a standby that has read nothing serves")
	}
	steps <- wal.Replayed{Records: []wal.Positioned{change("old", 0)}, Reached: map[int32]int64{slot: 1}, Lag: 1}
	waitFor(t, "the first step applied", func() bool { return sb.Applied()[slot] == 1 })
	if sb.CaughtUp() {
		t.Fatal("a standby one offset behind the log's end serves")
	}
	steps <- wal.Replayed{Records: []wal.Positioned{change("later", 1)}, Reached: map[int32]int64{slot: 2}}
	waitFor(t, "the standby caught up", sb.CaughtUp)
	if r, err := sb.ReadCommitted([]byte("old")); err != nil || !r.Found {
		t.Fatalf("caught up, the standby reads %+v %v", r, err)
	}
	// Behind again later, it still serves: EVENTUAL allows a replica to lag.
	steps <- wal.Replayed{Reached: map[int32]int64{slot: 3}, Lag: 5}
	waitFor(t, "the third step applied", func() bool { return sb.Applied()[slot] == 3 })
	if !sb.CaughtUp() {
		t.Fatal("a standby that had caught up stopped serving")
	}
}
