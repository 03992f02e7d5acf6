package partition

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
)

// corruptStore is a store whose read of key "x" fails as corrupt while bad
// is set, until it is cleared: a disk that lost the pages of x's value after
// the store's offsets reached it.
type corruptStore struct {
	store.Store
	bad atomic.Bool
}

func (s *corruptStore) GetMany(keys [][]byte) ([]kv.Read, error) {
	for _, k := range keys {
		if s.bad.Load() && string(k) == "x" {
			return nil, fmt.Errorf("reading x: %w", store.ErrCorrupt)
		}
	}
	return s.Store.GetMany(keys)
}

func (s *corruptStore) Get(key []byte) (kv.Read, error) {
	if s.bad.Load() && string(key) == "x" {
		return kv.Read{}, fmt.Errorf("reading x: %w", store.ErrCorrupt)
	}
	return s.Store.Get(key)
}

// Close keeps the store for the partition's next start (a node restart).
func (s *corruptStore) Close() error { return nil }

func (s *corruptStore) Clear() error {
	s.bad.Store(false)
	return s.Store.Clear()
}

// The outside tester's D3: a Kafka-mode store whose value pages were lost
// (offsets on the disk, values not) is discarded at the re-sync its failed
// read starts, and the partition restores from the log: the acknowledged
// value is served again (before: every read of x failed and re-synced onto
// the same store, for good).
func TestACorruptStoreIsRestoredFromTheLog(t *testing.T) {
	l := newFakeLog()
	st := &corruptStore{Store: store.NewMemory()}
	cfg := testConfig(l, st)
	cfg.DiscardCorrupt = true
	p := startServing(t, cfg)
	ctx := context.Background()
	if _, err := p.Upsert(ctx, entries("x", "A", "small", "s")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	st.bad.Store(true) // the restart finds x's value lost
	p = startServing(t, cfg)
	if _, err := p.Get(ctx, []byte("x")); err == nil {
		t.Fatal("the injected corruption was not read")
	}
	var got kv.Read
	var err error
	waitFor(t, "x is served again", func() bool {
		got, err = p.Get(ctx, []byte("x"))
		return err == nil
	})
	if string(got.Value.Data) != "A" {
		t.Fatalf("x = %q, want the acknowledged A", got.Value.Data)
	}
	if r, err := p.Get(ctx, []byte("small")); err != nil || string(r.Value.Data) != "s" {
		t.Fatalf("small = %q %v", r.Value.Data, err)
	}
}

// Without a log to restore from (the store is the log), the partition does
// not serve again: its restores fail naming the corruption.
func TestACorruptStoreThatIsTheLogStopsThePartition(t *testing.T) {
	l := newFakeLog()
	st := &corruptStore{Store: store.NewMemory()}
	cfg := testConfig(l, st)
	p := startServing(t, cfg)
	ctx := context.Background()
	if _, err := p.Upsert(ctx, entries("x", "A")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	st.bad.Store(true)
	p = startServing(t, cfg)
	p.Get(ctx, []byte("x"))
	waitFor(t, "reads name the corruption", func() bool {
		_, err := p.Get(ctx, []byte("small"))
		return err != nil && strings.Contains(err.Error(), "corrupt")
	})
	if !st.bad.Load() {
		t.Fatal("the store that is the log was cleared")
	}
}
