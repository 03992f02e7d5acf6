package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/wal"
)

// A Kafka partition proves it still owns its slots with every commit: a
// newer owner's fence makes its transactions fail. A local log (--wal disk,
// none) commits whatever it is given, and the data directory's lock fences
// only processes on the same directory: an owner paused (SIGSTOP, a VM
// freeze) or cut off from Kafka but not from its clients through a move
// would go on acknowledging writes the new owner never has, and answering
// reads from a state the new owner moved past.
//
// So a local log's partitions hold an ownership lease of Lease (L), renewed
// against the registry: a confirmation at t is a read of the registry's
// committed end at t that the node's view then reached, with the partition
// still the node's at its epoch in that view. A move committed after t is
// seen by the new owner only after t, and it serves L after that (LeaseWait);
// the old owner
//
//   - commits a group only with a confirmation at most leaseRenew (L/4) old
//     when the append starts (else it renews first; if it cannot, nothing is
//     written: not committed), and acknowledges it only if the append ended
//     before the confirmation's t + L - leaseMargin (else the outcome is
//     unknown: the group is on this disk, a new owner may serve without it);
//   - answers reads of committed state at once for only L - leaseRenew -
//     leaseMargin after a group began (the core's read lease): the group's
//     confirmation was at most leaseRenew older than it. After that a read
//     waits for a commit, that is a fresh confirmation.
//
// Both end before the new owner serves, however long a pause: the checks
// run on the old owner's clock, after it resumes, and measure durations
// only. A pause after the check and before the reply leaves cannot be
// closed by any lease (Kafka's neither): that reply was decided while the
// node was still the owner.

// leaseRenew and leaseMargin, as fractions of the lease.
const (
	leaseRenewDiv  = 4
	leaseMarginDiv = 10
)

// ownership is a node's confirmations against the registry, shared by its
// partitions: one registry read proves every partition the view gives it.
type ownership struct {
	reg   *registry.Registry
	lease time.Duration

	mu        sync.Mutex
	confirmed time.Time     // the newest confirmation's t
	renewing  chan struct{} // closed when the renewal in flight ends; nil: none
	err       error         // the last renewal's error
}

// renew confirms the registry afresh (single flight: a caller that finds
// a renewal in flight waits for it instead of starting another).
func (o *ownership) renew(ctx context.Context) (time.Time, error) {
	ch := o.start()
	select {
	case <-ch:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.confirmed, o.err
}

// start starts a renewal unless one is in flight, and returns the channel
// closed when the one in flight ends. A renewal has the lease to succeed.
func (o *ownership) start() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.renewing != nil {
		return o.renewing
	}
	ch := make(chan struct{})
	o.renewing = ch
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.lease)
		defer cancel()
		t := time.Now()
		err := o.reg.CatchUp(ctx)
		o.mu.Lock()
		defer o.mu.Unlock()
		if err == nil && t.After(o.confirmed) {
			o.confirmed = t
		}
		o.err = err
		o.renewing = nil
		close(ch)
	}()
	return ch
}

// last is the newest confirmation.
func (o *ownership) last() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.confirmed
}

// leased is a local log's appender under the ownership lease.
type leased struct {
	wal.Appender
	own   *ownership
	spec  registry.Partition
	lease time.Duration
}

// leaseAppender puts spec's appender under the node's ownership lease.
func (n *Node) leaseAppender(spec registry.Partition, newAppender func(context.Context) (wal.Appender, error)) func(context.Context) (wal.Appender, error) {
	return func(ctx context.Context) (wal.Appender, error) {
		app, err := newAppender(ctx)
		if err != nil {
			return nil, err
		}
		return &leased{Appender: app, own: n.ownership, spec: spec, lease: n.cfg.OwnershipLease}, nil
	}
}

func (a *leased) Append(ctx context.Context, g *wal.Group) ([]int64, error) {
	t, err := a.confirm(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", wal.ErrNotCommitted, err)
	}
	offsets, err := a.Appender.Append(ctx, g)
	if err != nil {
		return nil, err
	}
	if age := time.Since(t); age >= a.lease-a.lease/leaseMarginDiv {
		return nil, fmt.Errorf("%w: partition %d's group is on this node's disk, but its ownership was last confirmed %v ago, more than the lease (%v) allows: a newer owner may serve without it", wal.ErrCommitUnknown, a.spec.ID, age.Round(time.Millisecond), a.lease)
	}
	return offsets, nil
}

// confirm returns a confirmation at most lease/leaseRenewDiv older than
// the append (its group began before) in which the registry still gives
// the partition to this node at its epoch.
func (a *leased) confirm(ctx context.Context) (time.Time, error) {
	start := time.Now()
	oldest := start.Add(-a.lease / leaseRenewDiv)
	t := a.own.last()
	if t.Before(start.Add(-a.lease/leaseRenewDiv/2)) && !t.Before(oldest) {
		a.own.start() // half way: renew beside the appends, so that under steady writes none waits for the registry
	}
	if t.Before(oldest) {
		ctx, cancel := context.WithTimeout(ctx, a.lease)
		defer cancel()
		// A renewal already in flight may have read the registry before a
		// pause: renew until one is recent enough. One begun during this
		// append always is, however long the registry took to answer (the
		// acknowledgement's check below bounds that).
		for t.Before(oldest) {
			var err error
			if t, err = a.own.renew(ctx); err != nil {
				return t, fmt.Errorf("partition %d cannot confirm it is still this node's within its lease (%v): %w", a.spec.ID, a.lease, err)
			}
		}
	}
	now, ok := a.own.reg.View().Partitions[a.spec.ID]
	if !ok || now.Owner != a.spec.Owner || now.Epoch != a.spec.Epoch {
		return t, fmt.Errorf("%w: the registry no longer gives partition %d to %s at epoch %d", partition.ErrDeposed, a.spec.ID, a.spec.Owner, a.spec.Epoch)
	}
	return t, nil
}

// leaseTimes are a local log's partition's read lease and its new owner's
// wait, from the node's lease (see above).
func leaseTimes(lease time.Duration) (read, wait time.Duration) {
	return lease - lease/leaseRenewDiv - lease/leaseMarginDiv, lease
}
