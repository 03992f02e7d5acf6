package registry

import (
	"fmt"
	"slices"
	"sort"

	"github.com/sluicedb/sluice/keyspace"
)

// The control plane's rules, as pure functions of a view: what adding,
// moving or removing a partition writes, and where new partitions and their
// standbys go. The control service runs them inside Registry.Update, so they
// see the registry's newest state and their writes are serialised.

// AddRequest asks for a new partition.
type AddRequest struct {
	// ID, if set, is the id the partition must have (0 is reserved);
	// otherwise the next above every id in use.
	ID    *uint32
	Range keyspace.Range
	// Owner, if set, is the node that owns it; otherwise the least loaded.
	Owner string
	// Standbys is how many other nodes keep a standby of it.
	Standbys int
}

// Add returns the mutations that add the partition req asks for, and the
// partition. txnID names a partition's transactional id: the new one is
// recorded as a writer of its slots in the same write, so whoever owns them
// later fences it.
func (v *View) Add(req AddRequest, txnID func(uint32) string) ([]Mutation, Partition, error) {
	if o, ok := v.Overlapping(req.Range, 0); ok {
		return nil, Partition{}, fmt.Errorf("%w: slot range %s overlaps partition %d %s", ErrOverlap, req.Range, o.ID, o.Range)
	}
	epoch, bump := v.NextEpoch()
	p := Partition{Range: req.Range, Epoch: epoch, Owner: req.Owner}
	switch {
	case req.ID == nil:
		for id := range v.Partitions {
			p.ID = max(p.ID, id)
		}
		p.ID++
	case *req.ID == 0:
		return nil, Partition{}, fmt.Errorf("%w: partition id 0 is reserved", ErrInvalid)
	default:
		if _, dup := v.Partitions[*req.ID]; dup {
			return nil, Partition{}, fmt.Errorf("%w: partition %d exists", ErrExists, *req.ID)
		}
		p.ID = *req.ID
	}
	if p.Owner == "" {
		if p.Owner = v.LeastLoaded(); p.Owner == "" {
			return nil, Partition{}, ErrNoNodes
		}
	} else if _, ok := v.Nodes[p.Owner]; !ok {
		return nil, Partition{}, fmt.Errorf("%w %q", ErrUnknownNode, p.Owner)
	}
	if req.Standbys > len(v.Nodes)-1 {
		return nil, Partition{}, fmt.Errorf("%w: %d standbys asked, but only %d other nodes have announced themselves", ErrInvalid, req.Standbys, len(v.Nodes)-1)
	}
	p.Standbys = v.PickStandbys(p.Owner, req.Standbys)
	muts := []Mutation{bump, PutPartition(p)}
	if w, ok := v.RecordWriter(txnID(p.ID), p.Range, epoch); ok {
		muts = append(muts, w)
	}
	return muts, p, nil
}

// Find returns the partition with id, or (with id nil) the one whose range is
// exactly r.
func (v *View) Find(id *uint32, r keyspace.Range) (Partition, error) {
	if id != nil {
		p, ok := v.Partitions[*id]
		if !ok {
			return p, fmt.Errorf("%w: unknown partition %d", ErrNotFound, *id)
		}
		return p, nil
	}
	for _, p := range v.Partitions {
		if p.Range == r {
			return p, nil
		}
	}
	return Partition{}, fmt.Errorf("%w: no partition has exactly the slot range %s", ErrNotFound, r)
}

// Remove returns the mutations that remove partition p. Its writer record
// stays: a partition added later over any of these slots fences its
// producer, which may still be running (draining, paused, or behind on the
// registry).
func (v *View) Remove(p Partition) []Mutation { return []Mutation{DeletePartition(p.ID)} }

// Move returns the mutations that give partition id to node at a new epoch
// (none if it is there already), and the partition as it will be. A standby
// that becomes the owner is no longer a standby.
func (v *View) Move(id uint32, node string) ([]Mutation, Partition, error) {
	p, err := v.Find(&id, keyspace.Range{})
	if err != nil {
		return nil, p, err
	}
	if _, ok := v.Nodes[node]; !ok {
		return nil, p, fmt.Errorf("%w %q", ErrUnknownNode, node)
	}
	if p.Owner == node {
		return nil, p, nil
	}
	epoch, bump := v.NextEpoch()
	p.Owner, p.Epoch = node, epoch
	p.Standbys = slices.DeleteFunc(slices.Clone(p.Standbys), func(s string) bool { return s == node })
	return []Mutation{bump, PutPartition(p)}, p, nil
}

// LeastLoaded is the announced node owning the fewest partitions (the
// smallest id among equals), or "" with no node.
func (v *View) LeastLoaded() string {
	load := map[string]int{}
	for id := range v.Nodes {
		load[id] = 0
	}
	for _, p := range v.Partitions {
		if _, ok := load[p.Owner]; ok {
			load[p.Owner]++
		}
	}
	best := ""
	for id, n := range load {
		if best == "" || n < load[best] || (n == load[best] && id < best) {
			best = id
		}
	}
	return best
}

// PickStandbys chooses n announced nodes other than owner, fewest replicas
// (owned and standby) first, the smallest id among equals.
func (v *View) PickStandbys(owner string, n int) []string {
	load := map[string]int{}
	for id := range v.Nodes {
		load[id] = 0
	}
	for _, p := range v.Partitions {
		load[p.Owner]++
		for _, s := range p.Standbys {
			load[s]++
		}
	}
	var nodes []string
	for id := range load {
		if _, ok := v.Nodes[id]; ok && id != owner {
			nodes = append(nodes, id)
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if load[nodes[i]] != load[nodes[j]] {
			return load[nodes[i]] < load[nodes[j]]
		}
		return nodes[i] < nodes[j]
	})
	return nodes[:min(n, len(nodes))]
}
