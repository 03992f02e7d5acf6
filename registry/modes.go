package registry

import (
	"fmt"
	"sort"
)

// Where a partition's data can go. A partition's data follows its slots:
// with --wal kafka through the changelog (a new owner, or a partition added
// later over the slots, replays it); with --wal disk and none through the
// snapshot bucket (the owner's final snapshot, which the next one
// restores). A node reads only its own mode's: a --wal kafka node replays
// the changelog a disk or none node never wrote, and a disk or none node
// restores from the bucket what a kafka node never put there. So a move
// needs an owner that can hand the data over and a target of the same mode
// that can take it, and a removal an owner whose data can come back. These
// rules use the modes the nodes announced (Node.WAL, Node.Bucket), never
// the mode of the node that happens to answer the control call.

// Storage modes' write-ahead logs, as nodes announce them.
const (
	WALKafka = "kafka"
	WALDisk  = "disk"
	WALNone  = "none"
)

// WALOf is the write-ahead log node announced; kafka for one that did not
// say (a record from before nodes announced it, or no record).
func (v *View) WALOf(node string) string {
	if w := v.Nodes[node].WAL; w != "" {
		return w
	}
	return WALKafka
}

// handsOver says why node cannot hand its partitions' data on (to a new
// owner, or to a partition added over their slots), or nil.
func (v *View) handsOver(node string) error {
	if v.WALOf(node) == WALDisk && !v.Nodes[node].Bucket {
		return fmt.Errorf("%w: node %s runs --wal disk without --snapshot-url: a partition's data lives only on its owner's disk, so it can neither move to another node nor come back in a partition added over its slots; restart %s with --snapshot-url to move, remove, split or merge its partitions", ErrCannotCarry, node, node)
	}
	return nil
}

// CheckMove says why partition p's data cannot follow it to node to, or nil.
func (v *View) CheckMove(p Partition, to string) error {
	if err := v.handsOver(p.Owner); err != nil {
		return fmt.Errorf("partition %d: %w", p.ID, err)
	}
	from, into := v.WALOf(p.Owner), v.WALOf(to)
	if from != into {
		return fmt.Errorf("%w: partition %d's owner %s runs --wal %s and node %s runs --wal %s: a node of one mode never reads the other's (the changelog of --wal kafka, the snapshot bucket of disk and none), so the data would not follow; move it to a node of --wal %s",
			ErrCannotCarry, p.ID, p.Owner, from, to, into, from)
	}
	if into == WALDisk && !v.Nodes[to].Bucket {
		return fmt.Errorf("%w: node %s runs --wal disk without --snapshot-url: it cannot restore partition %d's data from the bucket its owner %s hands it over through; restart %s with --snapshot-url", ErrCannotCarry, to, p.ID, p.Owner, to)
	}
	return nil
}

// CheckRemove says why partition p's data could not come back in a
// partition added later over its slots, or nil.
func (v *View) CheckRemove(p Partition) error {
	if err := v.handsOver(p.Owner); err != nil {
		return fmt.Errorf("partition %d: %w", p.ID, err)
	}
	return nil
}

// checkStandbys says why partition p, owned by p.Owner, cannot have n
// standbys, or nil: a standby tails the Kafka changelog, which only a node
// of --wal kafka writes, into a node of --wal kafka.
func (v *View) checkStandbys(owner string, n int) error {
	if n == 0 {
		return nil
	}
	if w := v.WALOf(owner); w != WALKafka {
		return fmt.Errorf("%w: node %s runs --wal %s: a standby tails the Kafka changelog, which this mode never writes, so its partitions have no standbys; add the partition without --standbys, or on a node of --wal kafka", ErrCannotCarry, owner, w)
	}
	if others := len(v.standbyCandidates(owner)); n > others {
		return fmt.Errorf("%w: %d standbys asked, but only %d other nodes of --wal kafka have announced themselves", ErrInvalid, n, others)
	}
	return nil
}

// standbyCandidates are the announced nodes other than owner that can keep
// a standby: those of --wal kafka.
func (v *View) standbyCandidates(owner string) []string {
	var nodes []string
	for id := range v.Nodes {
		if id != owner && v.WALOf(id) == WALKafka {
			nodes = append(nodes, id)
		}
	}
	sort.Strings(nodes)
	return nodes
}

// MixedModes names an announced node other than self whose write-ahead log
// differs from wal, or "": partitions cannot move between them, nor the
// data of removed partitions come back on the other. Records that do not
// say (from before nodes announced their mode) are left out: the nodes of
// a cluster upgrading to this announce theirs as they restart.
func (v *View) MixedModes(self, wal string) (string, string) {
	ids := make([]string, 0, len(v.Nodes))
	for id := range v.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if n := v.Nodes[id]; id != self && n.WAL != "" && n.WAL != wal {
			return id, n.WAL
		}
	}
	return "", ""
}
