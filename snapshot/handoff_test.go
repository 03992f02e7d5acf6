package snapshot

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/store"
)

// The owner record: an announcement, a finish naming the final snapshot, and
// no owner overwriting a newer one's record.
func TestOwnerRecordHandsOff(t *testing.T) {
	ctx := context.Background()
	b, err := OpenBucket(ctx, "file://"+t.TempDir(), "c", BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok, err := b.Owner(ctx, 1); ok || err != nil {
		t.Fatalf("a new partition has an owner record: %v %v", ok, err)
	}
	if err := b.Announce(ctx, 1, rng4, 5, "n1"); err != nil {
		t.Fatal(err)
	}
	if o, ok, _ := b.Owner(ctx, 1); !ok || o != (Owner{Epoch: 5, Node: "n1", Range: rng4}) {
		t.Fatalf("after the announcement: %+v", o)
	}
	// The owner stops: its final snapshot, then the record names it.
	st := filled(t, 10, "final")
	m, dir, err := Write(ctx, st, t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: 5, Final: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(ctx, dir, m); err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(ctx, m, "n1"); err != nil {
		t.Fatal(err)
	}
	o, _, _ := b.Owner(ctx, 1)
	if !o.Final || o.Snapshot != m.Name() || o.Epoch != 5 {
		t.Fatalf("after the finish: %+v", o)
	}
	// The new owner restores it (into a memory store: the same format) and
	// announces itself; the old owner can no longer write the record.
	mem := store.NewMemory()
	got, ok, err := b.Restore(ctx, Want{Partition: 1, Range: rng4, Slots: 16}, mem, t.TempDir(), zerolog.Nop())
	if err != nil || !ok || !got.Final {
		t.Fatalf("restore of the final snapshot: %+v %v %v", got, ok, err)
	}
	if n, _ := mem.Len(); n != 10 {
		t.Fatalf("%d keys restored", n)
	}
	if err := b.Announce(ctx, 1, rng4, 6, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(ctx, m, "n1"); !errors.Is(err, ErrNewerOwner) {
		t.Fatalf("an older owner's finish over a newer owner's record: %v", err)
	}
	if err := b.Announce(ctx, 1, rng4, 5, "n1"); !errors.Is(err, ErrNewerOwner) {
		t.Fatalf("an older owner's announcement: %v", err)
	}
}
