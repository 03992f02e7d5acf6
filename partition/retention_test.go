package partition

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// compacted builds the situation a store offline for longer than the log's
// tombstone retention meets: the store holds "gone" (written at slot offset
// 0) and reached offset 1 of its slot; since then "gone" was removed and
// compaction dropped both its value and its tombstone, so the log holds only
// "kept" (at offset 1). A replay from the store's offset would keep "gone"
// for ever.
func compacted(t *testing.T, syncedAgo time.Duration) (*fakeLog, *store.Memory, int32) {
	t.Helper()
	slot := keyspace.Slot([]byte("gone"), 4)
	l := newFakeLog()
	kept := kv.Record{Kind: kv.KindChange, Slot: slot, Epoch: 1, Change: kv.Change{Key: []byte("kept"), Value: []byte("k"), Version: 1, Timestamp: 3}}
	// Offset 0 (gone's value) and 2 (its tombstone) are compacted away: the
	// fake log cannot have holes, so a heartbeat stands in for offset 0 and
	// offset 2 is simply no longer there.
	l.slots[slot] = []wal.Positioned{
		{Record: kv.Record{Kind: kv.KindHeartbeat, Slot: slot, Epoch: 1}, Offset: 0},
		{Record: kept, Offset: 1},
	}
	st := store.NewMemory()
	err := st.Apply(kv.Write{
		Changes:  []kv.Change{{Key: []byte("gone"), Value: []byte("old"), Version: 1, Timestamp: 1}},
		Offsets:  map[int32]int64{slot: 1},
		Clock:    1,
		SyncedAt: time.Now().Add(-syncedAgo).UnixMilli(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, st, slot
}

// A store last in sync longer ago than the log keeps tombstones is not
// replayed onto: it is emptied and restored from the log's start, so a key
// removed meanwhile stays removed. One in sync more recently is replayed
// onto as it is. The restore records when the store was in sync.
func TestRestoreEmptiesAStoreOutOfSyncLongerThanRetention(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		ago       time.Duration
		retention time.Duration
		goneLives bool
	}{
		{"out of sync longer than the retention", 2 * time.Hour, time.Hour, false},
		{"in sync within the retention", time.Minute, time.Hour, true}, // the log was not compacted past it: not emptied
		{"no retention known", 2 * time.Hour, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, st, _ := compacted(t, tc.ago)
			cfg := testConfig(l, st)
			cfg.WAL.(*testLog).retention = tc.retention
			before := time.Now()
			p := startServing(t, cfg)
			r, err := p.Get(ctx, []byte("gone"))
			if err != nil || r.Found != tc.goneLives {
				t.Fatalf("Get(gone) = %+v %v, want found=%v", r, err, tc.goneLives)
			}
			if at, _ := st.SyncedAt(); at < before.UnixMilli() {
				t.Fatalf("the restore left SyncedAt at %s, before it began", time.UnixMilli(at))
			}
			if tc.retention == 0 {
				return
			}
			// Every write stamps the store as in sync.
			stamp, _ := st.SyncedAt()
			for time.Now().UnixMilli() <= stamp {
				runtime.Gosched() // a write within the same millisecond could not show it
			}
			if _, err := p.Upsert(ctx, entries("new", "v")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the write's apply stamps SyncedAt", func() bool { at, _ := st.SyncedAt(); return at > stamp })
		})
	}
}

// A standby whose store was out of sync longer than the retention empties
// it and tails from the log's start; the promoted owner on that store then
// replays only the tail, without the removed key.
func TestStandbyEmptiesAStoreOutOfSyncLongerThanRetention(t *testing.T) {
	l, st, slot := compacted(t, 2*time.Hour)
	tailed := make(chan map[int32]int64, 1)
	sb := StartStandby(StandbyConfig{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Store: st, Retention: time.Hour,
		Tail: func(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error) error {
			if _, err := l.replay(ctx, from, fn, nil); err != nil {
				return err
			}
			tailed <- from
			<-ctx.Done()
			return ctx.Err()
		}})
	from := <-tailed
	sb.Close()
	if from[slot] != 0 {
		t.Fatalf("the standby tailed slot %d from %d, want 0 (its store emptied)", slot, from[slot])
	}
	if r, _ := st.Get([]byte("gone")); r.Found {
		t.Fatalf("the standby's store still holds a key removed while it was away: %+v", r)
	}
	cfg := testConfig(l, st)
	cfg.WAL.(*testLog).retention = time.Hour
	p := startServing(t, cfg)
	if r, err := p.Get(context.Background(), []byte("gone")); err != nil || r.Found {
		t.Fatalf("after promotion Get(gone) = %+v %v, want absent", r, err)
	}
}

// A replay that ends longer than the retention after the store was last in
// sync may have missed tombstones compacted away meanwhile: it fails, and the
// restore tried again empties the store and replays from the log's start.
func TestReplayEndingPastTheRetentionRestoresAfresh(t *testing.T) {
	const retention = 2 * time.Second
	l, st, slot := compacted(t, 0) // in sync just now
	synced, _ := st.SyncedAt()
	var froms []int64
	cfg := testConfig(l, st)
	cfg.WAL.(*testLog).retention = retention
	var late atomic.Bool
	cfg.now = func() time.Time {
		if late.Load() {
			return time.UnixMilli(synced).Add(retention + time.Second)
		}
		return time.Now()
	}
	cfg.WAL.(*testLog).replay = func(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error, waiting func(string)) (map[int32]int64, error) {
		froms = append(froms, from[slot])
		late.Store(true) // the first replay is slow: it ends past the retention

		return l.replay(ctx, from, fn, waiting)
	}
	p := startServing(t, cfg)
	if r, err := p.Get(context.Background(), []byte("gone")); err != nil || r.Found {
		t.Fatalf("Get(gone) = %+v %v, want absent", r, err)
	}
	if len(froms) != 2 || froms[0] != 1 || froms[1] != 0 {
		t.Fatalf("replays started at %v, want at the store's offset 1, then (emptied) at 0", froms)
	}
}
