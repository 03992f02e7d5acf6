package registry

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

func placementView() *View {
	return &View{
		Nodes: map[string]Node{"n1": {ID: "n1"}, "n2": {ID: "n2"}, "n3": {ID: "n3"}},
		Partitions: map[uint32]Partition{
			1: {ID: 1, Range: keyspace.Range{From: 0, To: 4}, Owner: "n1", Epoch: 1},
			2: {ID: 2, Range: keyspace.Range{From: 4, To: 8}, Owner: "n1", Epoch: 1, Standbys: []string{"n2"}},
			3: {ID: 3, Range: keyspace.Range{From: 8, To: 12}, Owner: "n2", Epoch: 1},
		},
		// Partition 7 was removed: its producer stays a writer of its slots.
		Writers:  map[string]Writer{txnID(7): {ID: txnID(7), Ranges: []WriterRange{{Range: keyspace.Range{From: 12, To: 16}, Epoch: 4}}}},
		MaxEpoch: 5,
		MaxID:    7,
	}
}

func txnID(id uint32) string { return fmt.Sprint("c.p", id) }

func TestAdd(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	cases := []struct {
		name string
		req  AddRequest
		want Partition
		err  error
	}{
		{"next id (above the removed 7), least loaded owner", AddRequest{Range: keyspace.Range{From: 12, To: 16}}, Partition{ID: 8, Range: keyspace.Range{From: 12, To: 16}, Owner: "n3", Epoch: 6}, nil},
		{"named id and owner, a standby", AddRequest{ID: u32(9), Range: keyspace.Range{From: 12, To: 14}, Owner: "n2", Standbys: 1}, Partition{ID: 9, Range: keyspace.Range{From: 12, To: 14}, Owner: "n2", Epoch: 6, Standbys: []string{"n3"}}, nil},
		{"overlap", AddRequest{Range: keyspace.Range{From: 2, To: 6}}, Partition{}, ErrOverlap},
		{"reserved id", AddRequest{ID: u32(0), Range: keyspace.Range{From: 12, To: 16}}, Partition{}, ErrInvalid},
		{"id in use", AddRequest{ID: u32(2), Range: keyspace.Range{From: 12, To: 16}}, Partition{}, ErrExists},
		{"id given before", AddRequest{ID: u32(7), Range: keyspace.Range{From: 12, To: 16}}, Partition{}, ErrExists},
		{"unknown owner", AddRequest{Range: keyspace.Range{From: 12, To: 16}, Owner: "n9"}, Partition{}, ErrUnknownNode},
		{"too many standbys", AddRequest{Range: keyspace.Range{From: 12, To: 16}, Standbys: 3}, Partition{}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			muts, p, err := placementView().Add(tc.req, txnID)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if !p.Equal(tc.want) {
				t.Fatalf("added %+v, want %+v", p, tc.want)
			}
			// The epoch and id counters, the partition, and its writer record, in one write.
			if len(muts) != 4 || muts[0].Key != maxEpochKey || muts[1].Key != maxIDKey || muts[3].Key != writerPrefix+txnID(p.ID) {
				t.Fatalf("mutations %v", muts)
			}
		})
	}
	if _, _, err := (&View{Partitions: map[uint32]Partition{}, Nodes: map[string]Node{}}).Add(AddRequest{Range: keyspace.Range{From: 0, To: 4}}, txnID); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("no nodes: %v", err)
	}
}

func TestFindMoveRemove(t *testing.T) {
	v := placementView()
	id := uint32(2)
	if p, err := v.Find(&id, keyspace.Range{}); err != nil || p.ID != 2 {
		t.Fatalf("Find by id: %+v %v", p, err)
	}
	if p, err := v.Find(nil, keyspace.Range{From: 8, To: 12}); err != nil || p.ID != 3 {
		t.Fatalf("Find by range: %+v %v", p, err)
	}
	missing := uint32(7)
	for _, err := range []error{
		func() error { _, err := v.Find(&missing, keyspace.Range{}); return err }(),
		func() error { _, err := v.Find(nil, keyspace.Range{From: 0, To: 5}); return err }(),
		func() error { _, _, err := v.Move(7, "n2"); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("a missing partition: %v", err)
		}
	}
	if _, _, err := v.Move(1, "n9"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("move to an unknown node: %v", err)
	}
	if muts, p, err := v.Move(1, "n1"); err != nil || muts != nil || p.Epoch != 1 {
		t.Errorf("move to where it is: %v %+v %v", muts, p, err)
	}
	// A standby that becomes the owner stops being a standby; a new epoch.
	muts, p, err := v.Move(2, "n2")
	if err != nil || p.Owner != "n2" || p.Epoch != 6 || slices.Contains(p.Standbys, "n2") || len(muts) != 2 {
		t.Errorf("move to the standby: %v %+v %v", muts, p, err)
	}
	if muts, err := v.Remove(v.Partitions[3]); err != nil || len(muts) != 1 || muts[0].Value != nil {
		t.Errorf("remove: %v", muts)
	}
}

func TestLeastLoadedAndStandbys(t *testing.T) {
	v := placementView()
	if got := v.LeastLoaded(); got != "n3" {
		t.Fatalf("least loaded %q, want n3 (owns nothing)", got)
	}
	// Load counts owned and standby partitions: n1 2, n2 2 (one standby), n3 0.
	if got := v.PickStandbys("n1", 2); !slices.Equal(got, []string{"n3", "n2"}) {
		t.Fatalf("standbys %v, want [n3 n2]", got)
	}
}
