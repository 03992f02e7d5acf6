package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

// rebalanceView: n1 owns partitions 1..n (four slots each, no standbys);
// nodes n1..nodes are announced.
func rebalanceView(n, nodes int) *View {
	v := &View{Partitions: map[uint32]Partition{}, Nodes: map[string]Node{}, MaxEpoch: uint64(n), MaxID: uint32(n)}
	for i := 1; i <= nodes; i++ {
		id := fmt.Sprint("n", i)
		v.Nodes[id] = Node{ID: id}
	}
	for i := 1; i <= n; i++ {
		v.Partitions[uint32(i)] = Partition{ID: uint32(i), Range: keyspace.Range{From: int32(4 * (i - 1)), To: int32(4 * i)}, Owner: "n1", Epoch: uint64(i)}
	}
	return v
}

func loads(v *View, live map[string]bool) map[string]int { return v.liveLoad(live) }

func always(Partition, string) bool { return true }
func never(Partition, string) bool  { return false }

// A node that joins receives partitions, a few at a time: first a standby of
// each (nothing changes owner), then ownership once the standby is caught
// up, until the loads differ by one at most. At every step every partition
// has exactly one owner, a live one, and at most maxMoves are under way.
func TestRebalanceSpreadsOntoAJoiningNode(t *testing.T) {
	v := rebalanceView(8, 3)
	all := live("n1", "n2", "n3")
	decisions, muts := v.Rebalance(all, 2, never)
	if len(decisions) != 2 {
		t.Fatalf("first step decided %+v, want two moves begun", decisions)
	}
	v = fold(t, v, muts)
	for _, d := range decisions {
		p := v.Partitions[d.ID]
		if p.Owner != "n1" || p.Moving == nil || p.Moving.To != d.To || !p.Moving.Added || !p.HasStandby(d.To) || d.Epoch != 0 {
			t.Fatalf("a move begun changed its owner or kept no standby on its target: %+v (%+v)", p, d)
		}
	}
	// Not caught up: nothing more (two under way already).
	if d, _ := v.Rebalance(all, 2, never); len(d) != 0 {
		t.Fatalf("decided %+v while two moves wait for their standbys", d)
	}
	for step := 0; ; step++ {
		if step > 20 {
			t.Fatal("no balance after 20 steps")
		}
		d, muts := v.Rebalance(all, 2, always)
		if len(d) == 0 {
			break
		}
		before := v.MaxEpoch
		v = fold(t, v, muts)
		moving := 0
		for _, p := range v.Partitions {
			if !all[p.Owner] {
				t.Fatalf("step %d: partition %d owned by %q", step, p.ID, p.Owner)
			}
			if p.Moving != nil {
				moving++
			}
		}
		if moving > 2 {
			t.Fatalf("step %d: %d moves under way, max 2", step, moving)
		}
		for _, x := range d {
			if x.Epoch != 0 && x.Epoch <= before {
				t.Fatalf("step %d: move %+v at an epoch not above %d", step, x, before)
			}
		}
	}
	l := loads(v, all)
	if l["n1"] > 3 || l["n2"] < 2 || l["n3"] < 2 {
		t.Fatalf("loads after rebalancing %v, want 8 partitions spread 3/3/2", l)
	}
	for _, p := range v.Partitions {
		if p.Moving != nil || len(p.Standbys) != 0 {
			t.Fatalf("partition %+v keeps a move or a warm-up standby after the rebalance", p)
		}
		if p.Owner != "n1" && p.Placed != "rebalance from n1" {
			t.Fatalf("partition %d placed %q", p.ID, p.Placed)
		}
	}
}

// A partition whose standby is on the target moves first (it is warm), and
// its old owner keeps a standby in the target's place.
func TestRebalancePrefersAWarmStandby(t *testing.T) {
	v := rebalanceView(4, 2)
	p := v.Partitions[3]
	p.Standbys = []string{"n2"}
	v.Partitions[3] = p
	d, muts := v.Rebalance(live("n1", "n2"), 1, never)
	if len(d) != 1 || d[0].ID != 3 {
		t.Fatalf("decided %+v, want partition 3 (warm on n2) first", d)
	}
	v = fold(t, v, muts)
	if m := v.Partitions[3].Moving; m == nil || m.Added {
		t.Fatalf("moving %+v: the standby was there before", m)
	}
	_, muts = v.Rebalance(live("n1", "n2"), 1, always)
	v = fold(t, v, muts)
	if p := v.Partitions[3]; p.Owner != "n2" || !slices.Equal(p.Standbys, []string{"n1"}) {
		t.Fatalf("after the move %+v, want owner n2 and standby n1", p)
	}
}

// Pinned partitions never move, a paused view decides nothing, and a
// balanced cluster is left alone.
func TestRebalanceLeavesPinnedPausedAndBalanced(t *testing.T) {
	v := rebalanceView(4, 2)
	for id := uint32(1); id <= 4; id++ {
		muts, _, err := v.Pin(id, true)
		if err != nil {
			t.Fatal(err)
		}
		v = fold(t, v, muts)
	}
	if d, _ := v.Rebalance(live("n1", "n2"), 4, always); len(d) != 0 {
		t.Fatalf("pinned partitions moved: %+v", d)
	}
	v = rebalanceView(4, 2)
	v = fold(t, v, v.SetAuto(false))
	if !v.Paused {
		t.Fatal("SetAuto(false) did not pause")
	}
	if d, _ := v.Rebalance(live("n1", "n2"), 4, always); len(d) != 0 {
		t.Fatalf("a paused view rebalanced: %+v", d)
	}
	if d, _, _ := v.Heal(live("n2")); len(d) != 0 {
		t.Fatalf("a paused view failed over: %+v", d)
	}
	v = fold(t, v, v.SetAuto(true))
	if v.Paused {
		t.Fatal("SetAuto(true) did not resume")
	}
	v = rebalanceView(3, 2)
	p := v.Partitions[1]
	p.Owner = "n2"
	v.Partitions[1] = p
	if d, _ := v.Rebalance(live("n1", "n2"), 4, always); len(d) != 0 {
		t.Fatalf("2/1 is balanced, yet decided %+v", d)
	}
}

// A move whose target leaves, or that is pinned meanwhile, stops: the
// standby it added goes and the owner stays. An operator's move wins over
// a move under way.
func TestRebalanceMovesThatCannotFinishStop(t *testing.T) {
	begin := func() (*View, Placement) {
		v := rebalanceView(4, 2)
		d, muts := v.Rebalance(live("n1", "n2"), 1, never)
		if len(d) != 1 {
			t.Fatalf("decided %+v", d)
		}
		return fold(t, v, muts), d[0]
	}
	v, d := begin()
	cancels, muts := v.Rebalance(live("n1"), 1, always)
	if len(cancels) != 1 || cancels[0].Cancel == "" || !strings.Contains(cancels[0].Cancel, "n2 left") {
		t.Fatalf("target gone: decided %+v", cancels)
	}
	v = fold(t, v, muts)
	if p := v.Partitions[d.ID]; p.Owner != "n1" || p.Moving != nil || len(p.Standbys) != 0 {
		t.Fatalf("after the cancel %+v", p)
	}

	v, d = begin()
	muts, _, err := v.Pin(d.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	v = fold(t, v, muts)
	if p := v.Partitions[d.ID]; p.Moving != nil || len(p.Standbys) != 0 || !p.Pinned {
		t.Fatalf("pinned during its move: %+v", p)
	}

	v, d = begin()
	v.Nodes["n3"] = Node{ID: "n3"}
	muts, _, err = v.Move(d.ID, "n3")
	if err != nil {
		t.Fatal(err)
	}
	v = fold(t, v, muts)
	if p := v.Partitions[d.ID]; p.Owner != "n3" || p.Moving != nil || len(p.Standbys) != 0 || p.Placed != PlacedByOperator {
		t.Fatalf("an operator's move during a rebalance: %+v", p)
	}
}

// Partitions of --wal disk or none are never rebalanced (no standby to warm
// up); a pinned partition whose owner left is stuck, not failed over.
func TestRebalanceOnlyKafkaAndHealLeavesPinned(t *testing.T) {
	v := rebalanceView(4, 2)
	for id, n := range v.Nodes {
		n.WAL, n.Bucket = WALDisk, true
		v.Nodes[id] = n
	}
	if d, _ := v.Rebalance(live("n1", "n2"), 2, always); len(d) != 0 {
		t.Fatalf("disk partitions rebalanced: %+v", d)
	}
	v = rebalanceView(2, 2)
	muts, _, _ := v.Pin(1, true)
	v = fold(t, v, muts)
	d, _, stuck := v.Heal(live("n2"))
	if len(d) != 1 || d[0].ID != 2 || stuck[1] == nil || !strings.Contains(stuck[1].Error(), "pinned") {
		t.Fatalf("heal with 1 pinned: decisions %+v stuck %v", d, stuck)
	}
	if _, _, err := v.Pin(9, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pin of an unknown partition: %v", err)
	}
}

// An operator's move wins: the partition it moved is never rebalanced away
// (others move instead to balance the loads), until an unpin gives it back.
func TestRebalanceNeverUndoesAnOperatorsMove(t *testing.T) {
	v := rebalanceView(4, 2)
	for _, id := range []uint32{1, 2} { // n1 owns 3 and 4, n2 owns 1 and 2
		muts, _, err := v.Move(id, "n2")
		if err != nil {
			t.Fatal(err)
		}
		v = fold(t, v, muts)
	}
	muts, _, err := v.Move(2, "n1") // the operator moves 2 back: 3/1
	if err != nil {
		t.Fatal(err)
	}
	v = fold(t, v, muts)
	for step := 0; step < 5; step++ {
		d, muts := v.Rebalance(live("n1", "n2"), 2, always)
		for _, x := range d {
			if x.ID == 2 {
				t.Fatalf("the rebalance moves partition 2, which an operator just moved: %+v", x)
			}
		}
		v = fold(t, v, muts)
	}
	if l := loads(v, live("n1", "n2")); l["n1"] != 2 || l["n2"] != 2 || v.Partitions[2].Owner != "n1" {
		t.Fatalf("loads %v, partition 2 on %s: want 2/2 with 2 still on n1", l, v.Partitions[2].Owner)
	}
	muts, p, err := v.Pin(2, false)
	if err != nil || len(muts) == 0 || p.Placed != PlacedReleased {
		t.Fatalf("unpin of an operator's move: %v %+v %v", muts, p, err)
	}
}
