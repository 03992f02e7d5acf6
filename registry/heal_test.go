package registry

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/keyspace"
)

func live(nodes ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range nodes {
		m[n] = true
	}
	return m
}

// healView: n1 owns 1 (no standby) and 2 (standby n2); n2 owns 3; n3 owns
// nothing.
func healView() *View { return placementView() }

func TestHealPromotesAStandbyAndMovesTheRestToTheLeastLoaded(t *testing.T) {
	v := healView()
	decisions, muts, stuck := v.Heal(live("n2", "n3"))
	if len(stuck) != 0 {
		t.Fatalf("stuck: %v", stuck)
	}
	want := []Failover{
		// 1 has no standby: n3 owns nothing, n2 owns 3.
		{ID: 1, From: "n1", To: "n3", Epoch: 6, Cause: CauseMove},
		// 2 is promoted in place on its standby n2; n3 takes the standby
		// (n1 is gone).
		{ID: 2, From: "n1", To: "n2", Epoch: 7, Cause: CausePromote, Standbys: []string{"n3"}},
	}
	if len(decisions) != len(want) {
		t.Fatalf("decisions %+v, want %+v", decisions, want)
	}
	for i := range want {
		d := decisions[i]
		if d.ID != want[i].ID || d.From != want[i].From || d.To != want[i].To || d.Epoch != want[i].Epoch || d.Cause != want[i].Cause || !slices.Equal(d.Standbys, want[i].Standbys) {
			t.Fatalf("decision %d = %+v, want %+v", i, d, want[i])
		}
	}
	// Folding the mutations gives every partition a live owner, each moved
	// one at its own epoch above every epoch given, and the epoch counter
	// past them.
	after := fold(t, v, muts)
	for id, p := range after.Partitions {
		if !live("n2", "n3")[p.Owner] {
			t.Fatalf("partition %d left on %s", id, p.Owner)
		}
	}
	if after.MaxEpoch != 7 || after.Partitions[1].Epoch != 6 || after.Partitions[2].Epoch != 7 || after.Partitions[3].Epoch != 1 {
		t.Fatalf("epochs after: max %d, %+v", after.MaxEpoch, after.Partitions)
	}
}

func TestHealSpreadsByLoad(t *testing.T) {
	v := healView()
	v.Partitions[4] = Partition{ID: 4, Range: keyspace.Range{From: 12, To: 14}, Owner: "n1", Epoch: 2}
	v.Partitions[5] = Partition{ID: 5, Range: keyspace.Range{From: 14, To: 16}, Owner: "n1", Epoch: 2}
	decisions, _, _ := v.Heal(live("n2", "n3"))
	got := map[uint32]string{}
	for _, d := range decisions {
		got[d.ID] = d.To
	}
	// n2 holds 3 and takes 2 as its standby; 1, 4, 5 go where load is least,
	// counting what this round gave: n3, n3, then n2 and n3 tie at 2 (n2).
	want := map[uint32]string{1: "n3", 2: "n2", 4: "n3", 5: "n2"}
	for id, to := range want {
		if got[id] != to {
			t.Fatalf("decisions %v, want %v", got, want)
		}
	}
}

func TestHealLeavesLiveOwnersAlone(t *testing.T) {
	// Every owner is live (a node that restarted within the session
	// timeout never left the group; an operator moved 3 to n2 by hand):
	// nothing changes.
	decisions, muts, stuck := healView().Heal(live("n1", "n2", "n3"))
	if len(decisions) != 0 || len(muts) != 0 || len(stuck) != 0 {
		t.Fatalf("a cluster whose owners are all live changed: %+v %v %v", decisions, muts, stuck)
	}
	// A departed standby alone moves nothing either.
	if decisions, _, _ := healView().Heal(live("n1", "n3")); len(decisions) != 1 || decisions[0].ID != 3 {
		t.Fatalf("n2 left: decisions %+v, want only its partition 3 moved", decisions)
	}
}

func TestHealNeverLeavesAPartitionWithoutAnOwner(t *testing.T) {
	v := healView()
	decisions, muts, stuck := v.Heal(live())
	if len(decisions) != 0 || len(muts) != 0 {
		t.Fatalf("with no live node: %+v %v", decisions, muts)
	}
	if len(stuck) != 3 || !errors.Is(stuck[1], ErrNoNodes) {
		t.Fatalf("stuck = %v, want all three, no nodes", stuck)
	}
	// A node whose data cannot follow (--wal disk without a bucket) keeps
	// its partitions, named with the reason.
	v = healView()
	v.Nodes["n1"] = Node{ID: "n1", WAL: WALDisk}
	v.Nodes["n3"] = Node{ID: "n3", WAL: WALDisk}
	decisions, _, stuck = v.Heal(live("n2", "n3"))
	if len(decisions) != 0 || !errors.Is(stuck[1], ErrCannotCarry) || !errors.Is(stuck[2], ErrCannotCarry) {
		t.Fatalf("disk without bucket: decisions %+v stuck %v", decisions, stuck)
	}
}

// fold applies muts to a copy of v as the registry's tail would.
func fold(t *testing.T, v *View, muts []Mutation) *View {
	t.Helper()
	out := &View{Partitions: map[uint32]Partition{}, Nodes: v.Nodes, Writers: v.Writers, MaxEpoch: v.MaxEpoch, MaxID: v.MaxID, Paused: v.Paused}
	for id, p := range v.Partitions {
		out.Partitions[id] = p
	}
	for _, m := range muts {
		if err := apply(out, &kgo.Record{Key: []byte(m.Key), Value: m.Value}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Two nodes gone at once: a partition whose standby left with its owner is
// moved to the least loaded live node, as one without a standby is.
func TestHealOwnerAndStandbyGoneTogether(t *testing.T) {
	decisions, muts, stuck := healView().Heal(live("n3"))
	if len(stuck) != 0 {
		t.Fatalf("stuck: %v", stuck)
	}
	for _, d := range decisions {
		if d.To != "n3" || d.Cause != CauseMove || len(d.Standbys) != 0 {
			t.Fatalf("decision %+v, want a move to n3, the only live node, with no standby (none live to keep one)", d)
		}
	}
	after := fold(t, healView(), muts)
	for id, p := range after.Partitions {
		if p.Owner != "n3" {
			t.Fatalf("partition %d on %s", id, p.Owner)
		}
	}
}

// A --wal disk partition whose owner left is never failed over, even with
// a snapshot bucket: its data is on the owner's disk, which a crash keeps,
// and a new owner would restore an older backup and lose every write
// acknowledged since (an outside tester: 102 of 200 acknowledged writes
// gone after a kill -9). It keeps its owner, named stuck with the reason;
// --wal none partitions (whose data a crash loses anyway) fail over to
// their last backup.
func TestHealNeverFailsOverADiskPartition(t *testing.T) {
	v := healView()
	for id := range v.Nodes {
		v.Nodes[id] = Node{ID: id, WAL: WALDisk, Bucket: true}
	}
	decisions, _, stuck := v.Heal(live("n2", "n3"))
	if len(decisions) != 0 || !errors.Is(stuck[1], ErrCannotCarry) || !errors.Is(stuck[2], ErrCannotCarry) {
		t.Fatalf("disk with a bucket: decisions %+v stuck %v", decisions, stuck)
	}
	v = healView()
	for id := range v.Nodes {
		v.Nodes[id] = Node{ID: id, WAL: WALNone, Bucket: true}
	}
	if decisions, _, stuck := v.Heal(live("n2", "n3")); len(decisions) != 2 || len(stuck) != 0 {
		t.Fatalf("none with a bucket: decisions %+v stuck %v, want both of n1's moved", decisions, stuck)
	}
}
