package store

import (
	"testing"

	"github.com/sluicedb/sluice/kv"
)

// SyncedAt survives a reopen, a batch without one leaves it, and Clear empties
// the store (keys, tombstones, offsets, SyncedAt) but keeps the clock.
func TestSyncedAtAndClear(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reopen func() Store) {
		if at, err := s.SyncedAt(); err != nil || at != 0 {
			t.Fatalf("a new store's SyncedAt = %d %v, want 0", at, err)
		}
		err := s.Apply(kv.Write{
			Changes:  []kv.Change{{Key: []byte("a"), Value: []byte("1"), Version: 1}, {Key: []byte("b"), Remove: true, Version: 4}},
			Offsets:  map[int32]int64{2: 10},
			Ingest:   map[int32]int64{2: 3},
			Clock:    99,
			SyncedAt: 1_700_000_000_123,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(kv.Write{Offsets: map[int32]int64{2: 11}}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		if at, err := s.SyncedAt(); err != nil || at != 1_700_000_000_123 {
			t.Fatalf("SyncedAt = %d %v after a reopen", at, err)
		}
		if err := s.Clear(); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		if r, _ := s.Get([]byte("a")); r.Found || r.Value.Version != 0 {
			t.Fatalf("a key survived Clear: %+v", r)
		}
		if r, _ := s.Get([]byte("b")); r.Value.Version != 0 {
			t.Fatalf("a tombstone survived Clear: %+v", r)
		}
		offs, _ := s.Offsets()
		in, _ := s.IngestOffsets()
		at, _ := s.SyncedAt()
		if len(offs) != 0 || len(in) != 0 || at != 0 {
			t.Fatalf("after Clear: offsets %v, ingest %v, synced at %d; want none", offs, in, at)
		}
		if c, _ := s.Clock(); c != 99 {
			t.Fatalf("Clear reset the clock to %d: stamps would go back", c)
		}
		if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("c"), Value: []byte("2"), Version: 1}}}); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Len(); n != 1 {
			t.Fatalf("Len = %d after a write on a cleared store", n)
		}
	})
}
