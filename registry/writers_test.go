package registry

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

func rng(from, to int32) keyspace.Range { return keyspace.Range{From: from, To: to} }

// The writers a new owner fences: every other id given an overlapping range
// before it, not one given a range after it, not itself, not a neighbour.
func TestFences(t *testing.T) {
	v := &View{Writers: map[string]Writer{}}
	record := func(id string, r keyspace.Range, epoch uint64) {
		t.Helper()
		m, ok := v.RecordWriter(id, r, epoch)
		if !ok {
			t.Fatalf("%s %s: no record needed", id, r)
		}
		if err := applyWriter(v, m.Key, m.Value); err != nil {
			t.Fatal(err)
		}
	}
	record("c.p1", rng(0, 4), 1)
	record("c.p2", rng(4, 8), 1)
	record("c.p5", rng(0, 2), 3) // p1 removed; 0-4 split over p5, p6
	record("c.p6", rng(2, 4), 4)
	if _, ok := v.RecordWriter("c.p5", rng(0, 2), 9); ok {
		t.Fatal("a move of p5 (same id, same range) asked for a new record")
	}
	if got := v.Writers["c.p5"].Ranges; len(got) != 1 || got[0].Epoch != 3 {
		t.Fatalf("p5's ranges %+v: the first epoch must stay", got)
	}
	for _, tc := range []struct {
		r     keyspace.Range
		epoch uint64
		self  string
		want  []string
	}{
		{rng(0, 4), 7, "c.p7", []string{"c.p1", "c.p5", "c.p6"}}, // all of 0-4 again, over p5 and p6
		{rng(0, 2), 3, "c.p5", []string{"c.p1"}},                 // p5 itself: only p1, before it
		{rng(2, 4), 4, "c.p6", []string{"c.p1"}},                 // p6: p1, not its neighbour p5
		{rng(0, 4), 1, "c.p1", nil},                              // p1's old owner: no one before it, p5 and p6 came after
		{rng(3, 5), 7, "c.p7", []string{"c.p1", "c.p2", "c.p6"}},
		{rng(12, 16), 7, "c.p7", nil},
	} {
		if got := v.Fences(tc.r, tc.epoch, tc.self); !slices.Equal(got, tc.want) {
			t.Errorf("Fences(%s, %d, %s) = %v, want %v", tc.r, tc.epoch, tc.self, got, tc.want)
		}
	}
}

// Writer records outlive their partitions: after a partition is removed, a
// reader opened later still sees every range its producer was given.
func TestWritersOutliveRemovals(t *testing.T) {
	r, cfg := open(t)
	ctx := context.Background()
	add := func(id uint32, rg keyspace.Range) {
		t.Helper()
		if err := r.Update(ctx, func(v *View) ([]Mutation, error) {
			epoch, bump := v.NextEpoch()
			muts := []Mutation{bump, PutPartition(Partition{ID: id, Range: rg, Owner: "n", Epoch: epoch})}
			if m, ok := v.RecordWriter(writerID(id), rg, epoch); ok {
				muts = append(muts, m)
			}
			return muts, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(id uint32) {
		t.Helper()
		if err := r.Update(ctx, func(*View) ([]Mutation, error) { return []Mutation{DeletePartition(id)}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	add(1, rng(0, 4))
	remove(1)
	add(5, rng(0, 2)) // 0-4 split over p5 and p6: ids are never given again (placement.go)
	add(6, rng(2, 4))
	later, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	v := later.View()
	if got := v.Writers[writerID(1)].Ranges; len(got) != 1 || got[0].Range != rng(0, 4) {
		t.Fatalf("writer of the removed p1: %+v, want [0,4)", got)
	}
	if got := v.Fences(rng(0, 4), v.MaxEpoch+1, writerID(9)); !slices.Equal(got, []string{writerID(1), writerID(5), writerID(6)}) {
		t.Fatalf("a new owner of [0,4) fences %v", got)
	}
	if r.Errs() != 0 || later.Errs() != 0 {
		t.Fatalf("records that did not decode: %d, %d", r.Errs(), later.Errs())
	}
}

func writerID(id uint32) string { return fmt.Sprintf("c.p%d", id) }
