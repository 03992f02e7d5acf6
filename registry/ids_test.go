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
		if err := r.Update(ctx, func(v *View) ([]Mutation, error) { return v.Remove(v.Partitions[id]), nil }); err != nil {
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
