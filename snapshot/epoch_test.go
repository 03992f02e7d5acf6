package snapshot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// putAt uploads a snapshot of n keys tagged tag taken at epoch (offsets:
// slot 0 at n, as a per-owner sequence of --wal disk or none would be) and
// returns its manifest and the upload's error.
func putAt(t *testing.T, b *Bucket, n int, tag string, epoch uint64) (Manifest, error) {
	t.Helper()
	m, dir, err := Write(context.Background(), filled(t, n, tag), t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return m, b.Upload(context.Background(), dir, m)
}

// In --wal disk and none a snapshot's offsets are its owner's own sequence
// numbers: two owners' offsets do not compare. The owner at the higher epoch
// holds what the registry gave later, so a restore takes its snapshot over a
// deposed owner's that reaches "further" (here: one that got in just before
// the new owner announced itself).
func TestRestorePrefersTheNewerEpochOverMoreOffsets(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 3)
	if err := b.Announce(ctx, 1, rng4, 5, "n1"); err != nil {
		t.Fatal(err)
	}
	old, err := putAt(t, b, 300, "old", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(ctx, 1, rng4, 6, "n2"); err != nil {
		t.Fatal(err)
	}
	cur, err := putAt(t, b, 50, "new", 6)
	if err != nil {
		t.Fatal(err)
	}
	st := emptyStore(t)
	m, ok, err := b.Restore(ctx, want16, st, t.TempDir(), zerolog.Nop())
	if err != nil || !ok || m.Name() != cur.Name() {
		t.Fatalf("owner record epoch 6 on n2: Restore = %s (epoch %d) %v %v, want the epoch-6 %s over the epoch-5 %s", m.Name(), m.Epoch, ok, err, cur.Name(), old.Name())
	}
	if r, _ := st.Get([]byte("k0")); string(r.Value.Data) != "new0" {
		t.Fatalf("k0 = %q, want the epoch-6 owner's", r.Value.Data)
	}
}

// A deposed owner's late upload (its final snapshot after the hand-off timed
// out) is refused, naming the owner that holds the partition now, and can
// never push the current owner's newest backup out of the bucket.
func TestUploadRefusesADeposedOwnerAndKeepsTheCurrentOwnersBackup(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 2)
	if err := b.Announce(ctx, 1, rng4, 6, "n2"); err != nil {
		t.Fatal(err)
	}
	cur, err := putAt(t, b, 50, "new", 6)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{300, 400} {
		late, err := putAt(t, b, n, "old", 5)
		if !errors.Is(err, ErrNewerOwner) || !strings.Contains(err.Error(), "epoch 6 on n2") || !strings.Contains(err.Error(), "epoch 5") {
			t.Fatalf("late upload %d at epoch 5 over the owner record of epoch 6: %v, want ErrNewerOwner naming both epochs", i, err)
		}
		names, err := b.List(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(names, late.Name()) {
			t.Fatalf("the refused upload %s is in the bucket: %v", late.Name(), names)
		}
		if !slices.Contains(names, cur.Name()) {
			t.Fatalf("the current owner's newest backup %s was pruned: %v", cur.Name(), names)
		}
	}
	m, ok, err := b.Restore(ctx, want16, emptyStore(t), t.TempDir(), zerolog.Nop())
	if err != nil || !ok || m.Name() != cur.Name() {
		t.Fatalf("Restore = %s %v %v, want the current owner's %s", m.Name(), ok, err, cur.Name())
	}
}

// Pruning never deletes the current owner's newest backup, even when the
// bucket holds more snapshots that reach further by another order: here
// snapshots put in before any owner record (--wal kafka writes none), at
// later epochs than the record's owner has backed up yet.
func TestPruneKeepsTheOwnersNewestBackup(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 1)
	if err := b.Announce(ctx, 1, rng4, 3, "n1"); err != nil {
		t.Fatal(err)
	}
	own, err := putAt(t, b, 10, "own", 3)
	if err != nil {
		t.Fatal(err)
	}
	// Another writer's snapshot at a later epoch, put in without going
	// through Upload's check (as a sidecar copying a folder would).
	other, dir, err := Write(ctx, filled(t, 20, "other"), t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DataFile, ManifestFile} {
		if err := b.put(ctx, b.dir(1)+other.Name()+"/"+f, dir+"/"+f); err != nil {
			t.Fatal(err)
		}
	}
	newest, err := putAt(t, b, 15, "own2", 3)
	if err != nil {
		t.Fatal(err)
	}
	names, err := b.List(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || !slices.Contains(names, other.Name()) || !slices.Contains(names, newest.Name()) || slices.Contains(names, own.Name()) {
		t.Fatalf("keep 1 with the owner at epoch 3: the bucket holds %v; want the epoch-9 %s and the owner's newest %s", names, other.Name(), newest.Name())
	}
}
