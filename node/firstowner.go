package node

import "github.com/sluicedb/sluice/registry"

// firstOwner reports whether spec, about to be opened by this process, is
// a partition of a brand-new cluster that no other process can have served
// (registry.View.FirstOwner says why none can): its first restore then
// serves without the lease wait.
func (n *Node) firstOwner(spec registry.Partition) bool {
	return n.registry.View().FirstOwner(spec, n.topics.TransactionalID(spec.ID), n.inc, n.joinedAt)
}
