package registry

import (
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/sluicedb/sluice/keyspace"
)

// The control plane's rules, as pure functions of a view: what adding,
// moving or removing a partition writes, and where new partitions and their
// standbys go. The control service runs them inside Registry.Update, so they
// see the registry's newest state and their writes are serialised.

// AddRequest asks for a new partition.
type AddRequest struct {
	// ID, if set, is the id the partition must have (0 is reserved, and an
	// id given before is never given again); otherwise the next from the
	// registry's id counter (NextID).
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
	p := Partition{Range: req.Range, Epoch: epoch, Owner: req.Owner, Placed: PlacedAdded}
	muts := []Mutation{bump}
	switch {
	case req.ID == nil:
		var idMut Mutation
		var err error
		if p.ID, idMut, err = v.NextID(); err != nil {
			return nil, Partition{}, err
		}
		muts = append(muts, idMut)
	case *req.ID == 0:
		return nil, Partition{}, fmt.Errorf("%w: partition id 0 is reserved", ErrInvalid)
	default:
		if err := v.checkGivenID(*req.ID); err != nil {
			return nil, Partition{}, err
		}
		p.ID = *req.ID
		if p.ID > v.maxID() {
			muts = append(muts, Mutation{Key: maxIDKey, Value: []byte(strconv.FormatUint(uint64(p.ID), 10))})
		}
	}
	// Whichever way the id came, it is free: PutPartition would replace a
	// live partition that had it (its slots then lost their owner, and its
	// data was pruned by whatever restored under its id).
	if _, dup := v.Partitions[p.ID]; dup {
		return nil, Partition{}, fmt.Errorf("%w: partition %d exists", ErrExists, p.ID)
	}
	if w, used := v.Writers[txnID(p.ID)]; used {
		return nil, Partition{}, fmt.Errorf("%w: partition id %d was given before (its changelog producer %s was given slots %s) and ids are never reused: a later owner of those slots would fence this partition; omit the id to take the next one", ErrExists, p.ID, w.ID, w.ranges())
	}
	if p.Owner == "" {
		if p.Owner = v.LeastLoaded(); p.Owner == "" {
			return nil, Partition{}, ErrNoNodes
		}
	} else if _, ok := v.Nodes[p.Owner]; !ok {
		return nil, Partition{}, fmt.Errorf("%w %q", ErrUnknownNode, p.Owner)
	}
	if err := v.checkStandbys(p.Owner, req.Standbys); err != nil {
		return nil, Partition{}, err
	}
	p.Standbys = v.PickStandbys(p.Owner, req.Standbys)
	muts = append(muts, PutPartition(p))
	if w, ok := v.RecordWriter(txnID(p.ID), p.Range, epoch); ok {
		muts = append(muts, w)
	}
	return muts, p, nil
}

const maxIDKey = "max-id"

// Partition ids are bounded well below 2^32 so that the counter can never
// wrap: an id one above 4294967295 was 0, the next Add without an id took 0
// and every later one took 0 again, each replacing the partition before it.
const (
	// MaxPartitionID is the highest partition id: NextID refuses past it,
	// and so does an Add that names a higher one.
	MaxPartitionID = 1<<30 - 1
	// MaxIDJump bounds how far above every id given so far an id named in
	// an Add may be, so that one call cannot use up the counter.
	MaxIDJump = 1 << 16
)

// NextID returns the id a new partition gets, one above every id ever given
// (View.MaxID, and every id in use in a registry from before the counter),
// and the mutation that records it as given. Ids are never reused, like
// epochs: a removed partition's producer stays recorded as a writer of its
// slots (writers.go), and a later owner of those slots would fence a new
// partition that had its id. Past MaxPartitionID it refuses (ErrIDsExhausted)
// rather than wrap.
func (v *View) NextID() (uint32, Mutation, error) {
	next := uint64(v.maxID()) + 1
	if next > MaxPartitionID {
		return 0, Mutation{}, fmt.Errorf("%w: the highest id given is %d and ids go up to %d, never back; no partition can be added", ErrIDsExhausted, v.maxID(), MaxPartitionID)
	}
	id := uint32(next)
	return id, Mutation{Key: maxIDKey, Value: []byte(strconv.FormatUint(uint64(id), 10))}, nil
}

// checkGivenID refuses an id an Add names that is above MaxPartitionID or
// more than MaxIDJump above every id given so far.
func (v *View) checkGivenID(id uint32) error {
	if id > MaxPartitionID {
		return fmt.Errorf("%w: partition id %d is above the highest id, %d; omit the id to take the next one", ErrInvalid, id, MaxPartitionID)
	}
	if limit := uint64(v.maxID()) + MaxIDJump; uint64(id) > limit {
		return fmt.Errorf("%w: partition id %d is more than %d above the highest id given so far (%d), so it may be at most %d: ids are never reused, and one call must not use them up; omit the id to take the next one", ErrInvalid, id, MaxIDJump, v.maxID(), limit)
	}
	return nil
}

func (v *View) maxID() uint32 {
	m := v.MaxID
	for id := range v.Partitions {
		m = max(m, id)
	}
	return m
}

// applyMaxID folds the id counter's record into v: it never goes back.
func applyMaxID(v *View, value []byte) error {
	id, err := strconv.ParseUint(string(value), 10, 32)
	if err != nil {
		return fmt.Errorf("registry: %s: %w", maxIDKey, err)
	}
	v.MaxID = max(v.MaxID, uint32(id))
	return nil
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
// It refuses (ErrCannotCarry) when p's owner could not hand its data on to a
// partition added over its slots (modes.go).
func (v *View) Remove(p Partition) ([]Mutation, error) {
	if err := v.CheckRemove(p); err != nil {
		return nil, err
	}
	return []Mutation{DeletePartition(p.ID)}, nil
}

// Move returns the mutations that give partition id to node at a new epoch
// (none if it is there already), and the partition as it will be. A standby
// that becomes the owner is no longer a standby. An operator's move wins:
// a rebalance of the partition under way stops (the standby it added
// goes). It refuses
// (ErrCannotCarry) a move the partition's data could not follow (modes.go).
func (v *View) Move(id uint32, node string) ([]Mutation, Partition, error) {
	p, err := v.Find(&id, keyspace.Range{})
	if err != nil {
		return nil, p, err
	}
	if err := v.handsOver(p.Owner); err != nil {
		return nil, p, fmt.Errorf("partition %d: %w", p.ID, err)
	}
	if _, ok := v.Nodes[node]; !ok {
		return nil, p, fmt.Errorf("%w %q", ErrUnknownNode, node)
	}
	if p.Owner == node {
		return nil, p, nil
	}
	if err := v.CheckMove(p, node); err != nil {
		return nil, p, err
	}
	epoch, bump := v.NextEpoch()
	p = cancelMove(p)
	p.Owner, p.Epoch, p.Placed = node, epoch, PlacedByOperator
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

// PickStandbys chooses n announced nodes other than owner that can keep a
// standby (of --wal kafka, modes.go), fewest replicas (owned and standby)
// first, the smallest id among equals.
func (v *View) PickStandbys(owner string, n int) []string {
	load := map[string]int{}
	for _, p := range v.Partitions {
		load[p.Owner]++
		for _, s := range p.Standbys {
			load[s]++
		}
	}
	nodes := v.standbyCandidates(owner)
	sort.SliceStable(nodes, func(i, j int) bool { return load[nodes[i]] < load[nodes[j]] })
	return nodes[:min(n, len(nodes))]
}

// Failover is one automatic placement decision: partition ID's owner From
// has left the cluster's membership, and the partition goes to To at Epoch.
// Cause says why To: CausePromote (To kept a standby of it, which replays
// only the changelog's tail) or CauseMove (no live standby: the least
// loaded live node, which restores it).
type Failover struct {
	ID       uint32
	From, To string
	Epoch    uint64
	Cause    string
	// Standbys are the partition's standbys after the decision: its live
	// ones other than To, topped up from live nodes to as many as before.
	Standbys []string
}

// The causes of a Failover (and the label of the moves-by-cause metric).
const (
	CausePromote = "promote-standby"
	CauseMove    = "move-least-loaded"
)

// Heal returns the decisions and mutations that give every partition whose
// owner is not live (not a member of the cluster's group) an owner that is:
// a live standby of it where it has one (promoted in place), else the least
// loaded live node its data can follow it to (CheckMove). Each decision
// takes its own epoch, above every epoch given before. A partition no live
// node can take keeps its owner (it is never left without one), and is
// named in stuck with the reason. A partition whose owner is live is left
// alone, whoever put it there: an operator's move to a live node always
// stands, and a node that restarted within the session timeout (it never
// left the group) keeps its partitions.
//
// A pinned partition is never moved (it is stuck, for the operator to
// move), and a paused view (SetAuto) decides nothing.
//
// Heal is a pure function of the view and the live set; the group's decider
// runs it inside Registry.Update, like the control plane's rules.
func (v *View) Heal(live map[string]bool) (decisions []Failover, muts []Mutation, stuck map[uint32]error) {
	if v.Paused {
		return nil, nil, nil
	}
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
	ids := make([]uint32, 0, len(v.Partitions))
	for id, p := range v.Partitions {
		if !live[p.Owner] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	epoch := v.MaxEpoch
	for _, id := range ids {
		p := v.Partitions[id]
		to, cause, err := v.healTarget(p, live, load)
		if err == nil && p.Pinned {
			err = fmt.Errorf("partition %d is pinned to %s: automatic placement never moves it; move it with sluice partitions move, or unpin it", p.ID, p.Owner)
		}
		if err != nil {
			if stuck == nil {
				stuck = map[uint32]error{}
			}
			stuck[id] = err
			continue
		}
		epoch++
		load[to]++
		p = cancelMove(p)
		d := Failover{ID: id, From: p.Owner, To: to, Epoch: epoch, Cause: cause, Standbys: v.healStandbys(p, to, live)}
		p.Owner, p.Epoch, p.Standbys = to, epoch, d.Standbys
		p.Placed = fmt.Sprintf("failover (%s) from %s", cause, d.From)
		decisions = append(decisions, d)
		muts = append(muts, PutPartition(p))
	}
	if len(decisions) > 0 {
		muts = append([]Mutation{{Key: maxEpochKey, Value: []byte(strconv.FormatUint(epoch, 10))}}, muts...)
	}
	return decisions, muts, stuck
}

// healTarget picks the live node that takes partition p from its departed
// owner: its first live standby the data can follow to, else the least
// loaded live node (the smallest id among equals) it can. A --wal disk
// partition is never failed over: its data is on its owner's disk.
func (v *View) healTarget(p Partition, live map[string]bool, load map[string]int) (string, string, error) {
	if err := v.handsOver(p.Owner); err != nil {
		return "", "", fmt.Errorf("partition %d: %w", p.ID, err)
	}
	if v.WALOf(p.Owner) == WALDisk {
		// Its data lives on the owner's disk, which survives a crash: a
		// new owner could only wait for a final snapshot a dead node never
		// uploads, then restore an older one and lose every write
		// acknowledged since (an outside tester lost 102 of 200).
		return "", "", fmt.Errorf("%w: partition %d's data lives on %s's disk (--wal disk), which a crash keeps: failing it over would lose what it acknowledged since its last backup, so it waits for %s to come back (or an operator's sluice partitions move)", ErrCannotCarry, p.ID, p.Owner, p.Owner)
	}
	for _, s := range p.Standbys {
		if live[s] && v.CheckMove(p, s) == nil {
			return s, CausePromote, nil
		}
	}
	best := ""
	var why error
	for id, n := range load {
		if err := v.CheckMove(p, id); err != nil {
			why = err
			continue
		}
		if best == "" || n < load[best] || (n == load[best] && id < best) {
			best = id
		}
	}
	if best == "" {
		if why == nil {
			why = fmt.Errorf("%w: no live node to take partition %d from %s", ErrNoNodes, p.ID, p.Owner)
		}
		return "", "", why
	}
	return best, CauseMove, nil
}

// healStandbys keeps p's live standbys other than its new owner to and tops
// them up, from live nodes that can keep one, to as many as p had.
func (v *View) healStandbys(p Partition, to string, live map[string]bool) []string {
	var keep []string
	for _, s := range p.Standbys {
		if s != to && live[s] {
			keep = append(keep, s)
		}
	}
	if len(p.Standbys) == 0 || v.checkStandbys(to, 1) != nil {
		return keep
	}
	for _, c := range v.PickStandbys(to, len(v.Nodes)) {
		if len(keep) >= len(p.Standbys) {
			break
		}
		if live[c] && !slices.Contains(keep, c) {
			keep = append(keep, c)
		}
	}
	return keep
}
