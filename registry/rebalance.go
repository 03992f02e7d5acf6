package registry

import (
	"fmt"
	"slices"
	"sort"
)

// Rebalancing: when the live nodes' loads (partitions owned) differ by more
// than one (a node joined, or came back after its partitions failed over),
// the group's decider moves partitions from the most loaded live node to
// the least loaded, a few at a time, without stopping the world (KIP-441's
// warm-up replicas): the target first keeps a standby of the partition
// (Moving), and ownership moves only once that standby is caught up with
// the changelog. The move itself is the one an operator's `partitions move`
// to a standby makes: one registry write that names the new owner at a new
// epoch, so a partition is never without an owner, and fencing is unchanged.
// Only partitions of --wal kafka are rebalanced: the other modes keep no
// standby to warm up, and moving their data through the bucket stops them
// for the ownership lease.

// Why a partition's owner owns it (Partition.Placed).
const (
	PlacedAdded      = "added"
	PlacedByOperator = "moved by an operator"
	// PlacedReleased: an operator's move, given back to rebalancing
	// (unpin).
	PlacedReleased = "moved by an operator, released"
	CauseRebalance = "rebalance"
)

// placementPaused is the placement key's value while automatic placement
// is paused, placementAuto while it runs.
const (
	placementPaused = "paused"
	placementAuto   = "auto"
)

// Moving is a rebalance under way: To keeps a standby of the partition and
// becomes its owner once the standby is caught up. Added says the rebalance
// added that standby (To kept none before): the move consumes it. Otherwise
// the old owner becomes a standby in To's place, so the partition keeps as
// many standbys as it had.
type Moving struct {
	To    string `json:"to"`
	Added bool   `json:"added,omitempty"`
}

// Placement is one automatic placement decision of Rebalance: partition ID
// starts warming up a standby on To (Epoch 0), goes from From to To at
// Epoch, or stops moving (Cancel, with the reason).
type Placement struct {
	ID       uint32
	From, To string
	Epoch    uint64
	Cancel   string
}

// SetAuto returns the mutation that pauses (on false) or resumes automatic
// placement.
func (v *View) SetAuto(on bool) []Mutation {
	val := placementAuto
	if !on {
		val = placementPaused
	}
	return []Mutation{{Key: placementKey, Value: []byte(val)}}
}

// Pin returns the mutations that pin (or unpin) partition id: a pinned
// partition is never moved by automatic placement, and a rebalance of it
// under way stops. Unpinning also gives a partition an operator moved back
// to rebalancing.
func (v *View) Pin(id uint32, pinned bool) ([]Mutation, Partition, error) {
	p, ok := v.Partitions[id]
	if !ok {
		return nil, p, fmt.Errorf("%w: partition %d", ErrNotFound, id)
	}
	release := !pinned && p.Placed == PlacedByOperator
	if p.Pinned == pinned && !release {
		return nil, p, nil
	}
	p.Pinned = pinned
	if release {
		p.Placed = PlacedReleased
	}
	if pinned {
		p = cancelMove(p)
	}
	return []Mutation{PutPartition(p)}, p, nil
}

// cancelMove stops p's rebalance: a standby it added goes.
func cancelMove(p Partition) Partition {
	if p.Moving == nil {
		return p
	}
	if p.Moving.Added {
		to := p.Moving.To
		p.Standbys = slices.DeleteFunc(slices.Clone(p.Standbys), func(s string) bool { return s == to })
	}
	p.Moving = nil
	return p
}

// Rebalance returns the decisions and mutations of one step of rebalancing
// among the live nodes (see the top of this file), at most maxMoves
// partitions moving at once. caughtUp reports whether node to's standby of
// p has caught up with the changelog (the decider asks to). It is a pure
// function of the view, the live set and caughtUp's answers; the decider
// runs it inside Registry.Update. A paused view decides nothing.
func (v *View) Rebalance(live map[string]bool, maxMoves int, caughtUp func(p Partition, to string) bool) (decisions []Placement, muts []Mutation) {
	if v.Paused {
		return nil, nil
	}
	epoch := v.MaxEpoch
	put := func(p Partition, d Placement) {
		decisions = append(decisions, d)
		muts = append(muts, PutPartition(p))
	}
	// Moves under way: cancel those that can no longer finish, finish those
	// whose standby caught up.
	ids := v.sortedIDs()
	moving := 0
	for _, id := range ids {
		p := v.Partitions[id]
		if p.Moving == nil {
			continue
		}
		to := p.Moving.To
		why := ""
		switch {
		case p.Pinned:
			why = "pinned"
		case !live[p.Owner]:
			why = fmt.Sprintf("its owner %s left (failover decides)", p.Owner)
		case !live[to]:
			why = fmt.Sprintf("node %s left", to)
		case v.CheckMove(p, to) != nil:
			why = v.CheckMove(p, to).Error()
		}
		switch {
		case why != "":
			put(cancelMove(p), Placement{ID: id, From: p.Owner, To: to, Cancel: why})
		case caughtUp(p, to):
			epoch++
			from, added := p.Owner, p.Moving.Added
			p.Standbys = slices.DeleteFunc(slices.Clone(p.Standbys), func(s string) bool { return s == to })
			if !added {
				p.Standbys = append(p.Standbys, from) // the old owner keeps a standby in to's place
			}
			p.Owner, p.Epoch, p.Moving = to, epoch, nil
			p.Placed = fmt.Sprintf("%s from %s", CauseRebalance, from)
			put(p, Placement{ID: id, From: from, To: to, Epoch: epoch})
		default:
			moving++
		}
	}
	// New moves, while fewer than maxMoves are under way: from the most
	// loaded live node to the least loaded, until loads differ by one at
	// most. A move under way counts on its target.
	load := v.liveLoad(live)
	for _, p := range v.Partitions {
		if p.Moving != nil && live[p.Owner] && live[p.Moving.To] {
			load[p.Owner]--
			load[p.Moving.To]++
		}
	}
	for moving < maxMoves {
		from, to := mostAndLeast(load)
		if from == "" || load[from]-load[to] <= 1 {
			break
		}
		p, ok := v.rebalanceCandidate(from, to, decisions)
		if !ok {
			delete(load, from) // nothing of from's can go to to: try the next
			continue
		}
		m := &Moving{To: to, Added: !p.HasStandby(to)}
		if m.Added {
			p.Standbys = append(slices.Clone(p.Standbys), to)
		}
		p.Moving = m
		put(p, Placement{ID: p.ID, From: from, To: to})
		load[from]--
		load[to]++
		moving++
	}
	if epoch > v.MaxEpoch {
		muts = append([]Mutation{{Key: maxEpochKey, Value: fmt.Appendf(nil, "%d", epoch)}}, muts...)
	}
	return decisions, muts
}

// rebalanceCandidate is the partition of from's that a rebalance moves to
// to: one to keeps a standby of first (already warm), else the lowest id;
// never a pinned one, one an operator moved (their move wins: it stays
// until unpinned; failover still moves it off a dead node), one moving
// already or decided in this step, or one
// whose data could not follow (CheckMove) or that could not be warmed up
// (a mode without standbys).
func (v *View) rebalanceCandidate(from, to string, decided []Placement) (Partition, bool) {
	var best Partition
	found := false
	for _, id := range v.sortedIDs() {
		p := v.Partitions[id]
		if p.Owner != from || p.Pinned || p.Placed == PlacedByOperator || p.Moving != nil || slices.ContainsFunc(decided, func(d Placement) bool { return d.ID == id }) {
			continue
		}
		if v.CheckMove(p, to) != nil || v.WALOf(from) != WALKafka {
			continue
		}
		if p.HasStandby(to) {
			return p, true
		}
		if !found {
			best, found = p, true
		}
	}
	return best, found
}

// liveLoad is how many partitions each live announced node owns.
func (v *View) liveLoad(live map[string]bool) map[string]int {
	load := map[string]int{}
	for id := range v.Nodes {
		if live[id] {
			load[id] = 0
		}
	}
	for _, p := range v.Partitions {
		if _, ok := load[p.Owner]; ok {
			load[p.Owner]++
		}
	}
	return load
}

// mostAndLeast are the most and the least loaded nodes of load (the
// smallest id among equals; "" when load is empty).
func mostAndLeast(load map[string]int) (most, least string) {
	ids := make([]string, 0, len(load))
	for id := range load {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if most == "" || load[id] > load[most] {
			most = id
		}
		if least == "" || load[id] < load[least] {
			least = id
		}
	}
	return most, least
}

func (v *View) sortedIDs() []uint32 {
	ids := make([]uint32, 0, len(v.Partitions))
	for id := range v.Partitions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
