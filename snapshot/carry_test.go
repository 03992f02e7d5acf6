package snapshot

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
)

// slotKeys are two keys in every slot of r (of 16).
func slotKeys(r keyspace.Range) map[int32][]string {
	out := map[int32][]string{}
	for i := 0; len(out) < int(r.Len()) || minLen(out) < 2; i++ {
		k := fmt.Sprint("key-", i)
		if s := keyspace.Slot([]byte(k), 16); r.Contains(s) && len(out[s]) < 2 {
			out[s] = append(out[s], k)
		}
	}
	return out
}

func minLen(m map[int32][]string) int {
	n := -1
	for _, v := range m {
		if n < 0 || len(v) < n {
			n = len(v)
		}
	}
	return n
}

// uploadPartition uploads a snapshot of partition id over r at epoch whose
// store holds, for each slot of r, the keys of slotKeys but those in drop,
// valued tag+key, each slot's offset at base+slot, and clock.
func uploadPartition(t *testing.T, b *Bucket, id uint32, r keyspace.Range, epoch uint64, tag string, base int64, clock uint64, drop map[string]bool) Manifest {
	t.Helper()
	st := store.NewMemory()
	batch := kv.Write{Offsets: map[int32]int64{}, Clock: clock}
	for s, keys := range slotKeys(r) {
		for _, k := range keys {
			if !drop[k] {
				batch.Changes = append(batch.Changes, kv.Change{Key: []byte(k), Value: []byte(tag + k), Version: 1})
			}
		}
		batch.Offsets[s] = base + int64(s)
	}
	if err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Announce(ctx, id, r, epoch, "n1"); err != nil {
		t.Fatal(err)
	}
	m, dir, err := Write(ctx, st, t.TempDir(), Manifest{Cluster: "c", Partition: id, Range: r, Slots: 16, Epoch: epoch, Final: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(ctx, dir, m); err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(ctx, m, "n1"); err != nil {
		t.Fatal(err)
	}
	return m
}

// A partition with no snapshot of its own carries the data of its slots
// over from the partitions that held them before, slot by slot from the one
// that held each slot last: partition 1 held 0-8 (epoch 3), was removed, and
// partition 2 took 0-4 (epoch 5), changed and removed some keys, and was
// removed in turn. A partition over 0-8 (a merge) and one over 2-6 (a split
// across both) get 0-4 as partition 2 left it and the rest as partition 1
// did, with each slot's offsets and the highest clock.
func TestCarryTakesEachSlotFromItsLastPartition(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 3)
	all, low := keyspace.Range{From: 0, To: 8}, keyspace.Range{From: 0, To: 4}
	removed := map[string]bool{slotKeys(low)[1][0]: true}
	uploadPartition(t, b, 1, all, 3, "p1-", 100, 900, nil)
	uploadPartition(t, b, 2, low, 5, "p2-", 10, 500, removed)
	// A snapshot of another cluster over the slots is never carried.
	other, dir, err := Write(ctx, store.NewMemory(), t.TempDir(), Manifest{Cluster: "other", Partition: 4, Range: all, Slots: 16, Epoch: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DataFile, ManifestFile} {
		if err := b.put(ctx, b.dir(4)+other.Name()+"/"+f, dir+"/"+f); err != nil {
			t.Fatal(err)
		}
	}
	if pending, err := b.Unfinished(ctx, Want{Partition: 3, Range: all, Slots: 16}, 7); err != nil || len(pending) != 0 {
		t.Fatalf("both removed partitions finished: Unfinished = %v %v", pending, err)
	}

	for _, r := range []keyspace.Range{all, {From: 2, To: 6}} {
		for name, st := range map[string]interface {
			Target
			Get([]byte) (kv.Read, error)
			Offsets() (map[int32]int64, error)
			Clock() (uint64, error)
		}{"memory": store.NewMemory(), "badger": emptyStore(t)} {
			t.Run(fmt.Sprint(r, " ", name), func(t *testing.T) {
				used, err := b.Carry(ctx, Want{Partition: 3, Range: r, Slots: 16}, st, t.TempDir(), zerolog.Nop())
				if err != nil || len(used) != 2 {
					t.Fatalf("Carry = %d snapshots, %v; want partition 2's and 1's", len(used), err)
				}
				offsets, _ := st.Offsets()
				for s, keys := range slotKeys(all) {
					tag, base := "p1-", int64(100)
					if low.Contains(s) {
						tag, base = "p2-", 10
					}
					for _, k := range keys {
						got, err := st.Get([]byte(k))
						switch {
						case err != nil:
							t.Fatal(err)
						case !r.Contains(s) && got.Found:
							t.Errorf("%s (slot %d, outside %s) carried over: %q", k, s, r, got.Value.Data)
						case r.Contains(s) && removed[k] && got.Found:
							t.Errorf("%s (slot %d) was removed by partition 2, carried over from partition 1: %q", k, s, got.Value.Data)
						case r.Contains(s) && !removed[k] && string(got.Value.Data) != tag+k:
							t.Errorf("%s (slot %d) = %q, want %q", k, s, got.Value.Data, tag+k)
						}
					}
					if want, got := base+int64(s), offsets[s]; r.Contains(s) && got != want {
						t.Errorf("slot %d's offset %d, want %d", s, got, want)
					} else if _, has := offsets[s]; !r.Contains(s) && has {
						t.Errorf("slot %d (outside %s) has an offset", s, r)
					}
				}
				if c, _ := st.Clock(); c != 900 {
					t.Errorf("clock %d, want the highest, 900", c)
				}
			})
		}
	}
}

// A removed partition whose owner has not marked its record final is still
// handing over: a partition added over its slots waits for it.
func TestUnfinishedNamesAnOwnerStillHandingOver(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 3)
	if err := b.Announce(ctx, 1, keyspace.Range{From: 0, To: 4}, 3, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(ctx, 2, keyspace.Range{From: 4, To: 8}, 4, "n2"); err != nil {
		t.Fatal(err)
	}
	pending, err := b.Unfinished(ctx, Want{Partition: 5, Range: keyspace.Range{From: 2, To: 4}, Slots: 16}, 7)
	if err != nil || len(pending) != 1 || pending[1].Node != "n1" {
		t.Fatalf("Unfinished = %v %v, want partition 1 on n1 only", pending, err)
	}
	if pending, _ := b.Unfinished(ctx, Want{Partition: 5, Range: keyspace.Range{From: 2, To: 4}, Slots: 16}, 2); len(pending) != 0 {
		t.Fatalf("an owner at a later epoch than the new partition's is not its predecessor: %v", pending)
	}
}
