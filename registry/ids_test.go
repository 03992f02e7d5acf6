package registry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

// Partition ids come from a counter that never goes back, like epochs: the
// id of a removed partition (here the highest, 2) is never given again, not
// by the next Add and not to a fresh reader of the registry, and asking for
// it by name is refused (its producer is recorded as a writer of its old
// slots, and a later owner of those would fence the partition that reused it).
func TestPartitionIDsAreNeverReused(t *testing.T) {
	r, cfg := open(t)
	ctx := context.Background()
	if err := r.Update(ctx, func(*View) ([]Mutation, error) { return []Mutation{PutNode(Node{ID: "n1"})}, nil }); err != nil {
		t.Fatal(err)
	}
	add := func(req AddRequest) (Partition, error) {
		var added Partition
		err := r.Update(ctx, func(v *View) ([]Mutation, error) {
			muts, p, err := v.Add(req, txnID)
			added = p
			return muts, err
		})
		return added, err
	}
	remove := func(id uint32) {
		t.Helper()
		if err := r.Update(ctx, func(v *View) ([]Mutation, error) { return v.Remove(v.Partitions[id]) }); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint32
	for _, rg := range []keyspace.Range{{From: 0, To: 4}, {From: 4, To: 8}} {
		p, err := add(AddRequest{Range: rg})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	remove(ids[1])
	p, err := add(AddRequest{Range: keyspace.Range{From: 8, To: 12}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids, p.ID) {
		t.Fatalf("ids %v given, %d removed; the next Add gave %d again", ids, ids[1], p.ID)
	}
	ids = append(ids, p.ID)
	remove(p.ID)

	later, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	var again Partition
	if err := later.Update(ctx, func(v *View) ([]Mutation, error) {
		muts, p, err := v.Add(AddRequest{Range: keyspace.Range{From: 4, To: 8}}, txnID)
		again = p
		return muts, err
	}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids, again.ID) {
		t.Fatalf("ids %v given, all but %d removed; a fresh reader's Add gave %d again", ids, ids[0], again.ID)
	}
	old := ids[1]
	_, err = add(AddRequest{ID: &old, Range: keyspace.Range{From: 12, To: 16}})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "never reused") || !strings.Contains(err.Error(), "[4,8)") {
		t.Fatalf("asking for the removed id %d again: %v, want ErrExists naming its old slots and that ids are never reused", old, err)
	}
}

// The id counter never wraps (the tester's D1): after an id of 2^32-1 an
// Add without an id got 0, and the next one 0 again, each replacing the
// partition 0 before it (its slots lost their owner; acknowledged writes were
// lost). Now an id that high is refused, a counter at its top refuses rather
// than wrap, and no Add ever replaces a live partition or takes an id whose
// producer was given slots before, however the id came.
func TestPartitionIDsNeverWrap(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	top := uint32(1<<32 - 1)
	if _, _, err := placementView().Add(AddRequest{ID: u32(top), Range: keyspace.Range{From: 12, To: 16}}, txnID); !errors.Is(err, ErrInvalid) {
		t.Errorf("add with id %d: %v, want ErrInvalid naming the highest id", top, err)
	}
	if _, _, err := placementView().Add(AddRequest{ID: u32(7 + 1<<20), Range: keyspace.Range{From: 12, To: 16}}, txnID); !errors.Is(err, ErrInvalid) {
		t.Errorf("add with an id far above the counter (7): %v, want ErrInvalid naming the bound", err)
	}

	// A registry where the id counter already reached the top (written
	// before the bound), even with a partition 0 from a wrap in it.
	v := placementView()
	v.MaxID = top
	v.Partitions[0] = Partition{ID: 0, Range: keyspace.Range{From: 12, To: 14}, Owner: "n3", Epoch: 5}
	for _, rg := range []keyspace.Range{{From: 14, To: 15}, {From: 15, To: 16}} {
		_, p, err := v.Add(AddRequest{Range: rg}, txnID)
		if err == nil {
			t.Errorf("add %s with the id counter at %d gave id %d, partition %d then being %+v, want a refusal: ids exhausted", rg, top, p.ID, p.ID, p)
		} else if !strings.Contains(err.Error(), "ids exhausted") {
			t.Fatalf("add %s with the id counter at %d: %v, want an error saying the ids are exhausted", rg, top, err)
		}
	}

	// The counter and the registry disagree (the counter behind a producer
	// recorded as a writer): the next id is refused, not given twice.
	v = placementView()
	v.Writers[txnID(8)] = Writer{ID: txnID(8), Ranges: []WriterRange{{Range: keyspace.Range{From: 14, To: 16}, Epoch: 5}}}
	if _, p, err := v.Add(AddRequest{Range: keyspace.Range{From: 12, To: 16}}, txnID); !errors.Is(err, ErrExists) {
		t.Errorf("the next id (8) whose producer was given slots before: got id %d, %v; want ErrExists", p.ID, err)
	}
}
