package node

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// routesConfirmWait bounds how long a GetRoutes waits for a fresh read of
// the registry before it refuses.
const routesConfirmWait = 2 * time.Second

// tableConfirmed is nil when the node's view of the registry (its routing
// table) was confirmed against the registry's end within a read lease,
// renewing the confirmation (shared with the ownership lease's) if need be.
// A node cut off from Kafka cannot: its table still names it the owner of
// partitions an operator moved away, and a client that took its routes from
// it kept sending it their keys, timing out, until the node was reconnected
// (TestNodeCutOffFromBrokersOrClients). Refused, the client asks another
// node.
func (n *Node) tableConfirmed(ctx context.Context) error {
	if time.Since(n.ownership.last()) < n.cfg.Lease {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, routesConfirmWait)
	defer cancel()
	t, err := n.ownership.renew(ctx)
	if err == nil {
		if time.Since(t) < n.cfg.Lease+routesConfirmWait {
			return nil
		}
		err = errors.New("the read that ended began too long ago")
	}
	last := "never"
	if l := n.ownership.last(); !l.IsZero() {
		last = time.Since(l).Round(time.Millisecond).String() + " ago"
	}
	return fmt.Errorf("the registry could not be read within %v (last read to its end %s): %v", routesConfirmWait, last, err)
}
