package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/store"
)

// A read of the newest snapshot that fails on the bucket's side (an I/O
// error, a 503: not a snapshot gone since the listing, not one that fails
// verification) fails the restore, which its caller retries. Loading the
// snapshot before it instead lost what the newest held beyond it: in --wal
// none, acknowledged writes a backup had saved (found by the partition
// simulator, SLUICE_SEED=2 go test ./partition -run TestSimulation).
func TestRestoreFailsWhenTheNewestSnapshotDoesNotRead(t *testing.T) {
	ctx := context.Background()
	bdir := t.TempDir()
	b, err := OpenBucket(ctx, "file://"+bdir, "c", BucketOptions{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	put(t, b, 100, "old", nil)
	newest := put(t, b, 200, "new", nil)

	// The newest data file does not read: a symlink to itself where the
	// file was (opening it fails with ELOOP, as a disk or network error
	// would fail it; not "not found").
	data := filepath.Join(bdir, "c", "p1", newest.Name(), DataFile)
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, data); err != nil {
		t.Fatal(err)
	}
	st := emptyStore(t)
	m, ok, err := b.Restore(ctx, want16, st, t.TempDir(), zerolog.Nop())
	if err == nil {
		t.Fatalf("Restore = %s %v, nil: it loaded an older snapshot while the newest (%s) did not read", m.Name(), ok, newest.Name())
	}
	if n, _ := st.Len(); n != 0 {
		t.Fatalf("the failed restore left %d keys in the store", n)
	}
}

// The same for carrying slots over from a removed partition: a read of the
// snapshot that holds them last failing on the bucket's side fails the
// carry (retried), instead of carrying them from an older partition's
// snapshot (partition 2's removal of a key undone, its values lost).
func TestCarryFailsWhenTheNewestSnapshotDoesNotRead(t *testing.T) {
	ctx := context.Background()
	bdir := t.TempDir()
	b, err := OpenBucket(ctx, "file://"+bdir, "c", BucketOptions{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	all, low := keyspace.Range{From: 0, To: 8}, keyspace.Range{From: 0, To: 4}
	uploadPartition(t, b, 1, all, 3, "p1-", 100, 900, nil)
	newest := uploadPartition(t, b, 2, low, 5, "p2-", 10, 500, nil)

	data := filepath.Join(bdir, "c", "p2", newest.Name(), DataFile)
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, data); err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	used, err := b.Carry(ctx, Want{Partition: 3, Range: low, Slots: 16}, st, t.TempDir(), zerolog.Nop())
	if err == nil {
		t.Fatalf("Carry = %d snapshots, nil: it carried slots %s from an older partition while partition 2's snapshot (%s) did not read", len(used), low, newest.Name())
	}
}
