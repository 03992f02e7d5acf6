package registry

// A brand-new cluster's partitions serve without the read-lease wait.
//
// A new owner waits a lease after fencing before it serves (the read lease,
// or with --wal disk and none the ownership lease, 10 s) because a deposed
// owner may still answer reads of committed state for up to a lease after
// its last commit: a process that served the same slots before, whether an
// earlier owner of this partition (a move, a failover, or an earlier process
// of this very node id, still alive behind a network cut) or the owner of
// another partition that held some of these slots and was removed. Where
// no such process can exist there is nothing to wait out, and the wait only
// delays a new cluster's first answer (10 s with --wal disk).
//
// Epoch 1 is given once per cluster, by the first node to join, in the same
// registry transaction that registers its incarnation and creates the first
// partitions over all the slots. So a partition at epoch 1 is served by no
// earlier process when all of these hold:
//   - this process is the one that registered in that transaction (the
//     registry had given no epoch when it joined): no earlier process of
//     its node id can have opened the partition, whose entry came with this
//     incarnation; a later process of the id registers at an epoch of 1 or
//     more and waits;
//   - no newer process of the node id has registered since (it would be the
//     owner now, and this one stops serving);
//   - the registry records no writer of any of its slots but its own
//     producer, given exactly its range at epoch 1: no other partition ever
//     held one of them. (Writer records are never forgotten, so a removed
//     partition's slots keep its writer: an owner that was removed may still
//     answer reads within its lease, and a partition over its slots waits.)
//
// A restart, a move, a promotion, a new epoch, or any partition added later
// fails one of these and waits, as before (or skips by the restart rule of
// node/partitions.go, which has its own proof).

// FirstOwner is the rule above over v: whether spec, about to be opened by
// the process of incarnation inc, which registered when the registry's
// highest epoch was joinedAt, is a partition of a brand-new cluster that no
// other process can have served; self is spec's producer's transactional id.
func (v *View) FirstOwner(spec Partition, self string, inc Incarnation, joinedAt uint64) bool {
	if spec.Epoch != 1 || joinedAt != 0 || inc.N == 0 {
		return false
	}
	if now := v.Incarnations[inc.Node]; now.N != inc.N || inc.Node != spec.Owner {
		return false
	}
	for id, w := range v.Writers {
		for _, wr := range w.Ranges {
			if !wr.Range.Overlaps(spec.Range) {
				continue
			}
			if id != self || wr.Range != spec.Range || wr.Epoch != spec.Epoch {
				return false
			}
		}
	}
	return true
}
