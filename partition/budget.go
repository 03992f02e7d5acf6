package partition

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"github.com/sluicedb/sluice/partition/core"
)

// ErrOverBudget: the bytes of requests queued in the partition (or in all of
// the node's partitions) are at their bound (ResourceExhausted; not applied).
var ErrOverBudget = errors.New("partition: queued request bytes at the budget, retry with backoff")

// Budget bounds the bytes of the requests a node's partitions hold, from the
// moment a request is queued until its reply is sent: what a flood of large
// batches can make a node keep in memory. One Budget may be shared by many
// partitions; a nil Budget bounds nothing.
type Budget struct {
	limit int64
	sem   *semaphore.Weighted
	used  atomic.Int64 // what the semaphore holds, for metrics (it does not tell)
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, sem: semaphore.NewWeighted(limit)}
}

// Limit is the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the bytes held now; a nil Budget holds none.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// clamp caps n at the limit, so one request larger than the whole budget is
// still taken when nothing else is.
func (b *Budget) clamp(n int64) int64 { return min(n, b.limit) }

func (b *Budget) tryTake(n int64) bool {
	if b == nil {
		return true
	}
	if !b.sem.TryAcquire(b.clamp(n)) {
		return false
	}
	b.used.Add(b.clamp(n))
	return true
}

func (b *Budget) take(ctx context.Context, n int64) error {
	if b == nil {
		return nil
	}
	if err := b.sem.Acquire(ctx, b.clamp(n)); err != nil {
		return err
	}
	b.used.Add(b.clamp(n))
	return nil
}

func (b *Budget) give(n int64) {
	if b != nil {
		b.used.Add(-b.clamp(n))
		b.sem.Release(b.clamp(n))
	}
}

// cost is the bytes a request holds: keys and values, and a little for each.
func cost(r *core.Request) int64 {
	n := int64(len(r.Key)) + 64
	for _, e := range r.Entries {
		n += int64(len(e.Key)+len(e.Value)) + 64
	}
	for _, k := range r.Keys {
		n += int64(len(k)) + 64
	}
	for _, rec := range r.Ingest {
		n += int64(rec.Size()) + 64
	}
	return n
}

// admit takes req's bytes from the partition's and the node's budgets, or
// says which is full. The bytes go back when its reply is sent (refund).
func (p *Partition) admit(req *request) error {
	req.cost = cost(&req.Request)
	if !p.budget.tryTake(req.cost) {
		return fmt.Errorf("%w (partition %d holds up to %d bytes)", ErrOverBudget, p.cfg.ID, p.budget.Limit())
	}
	if !p.cfg.NodeBudget.tryTake(req.cost) {
		p.budget.give(req.cost)
		return fmt.Errorf("%w (the node's partitions hold up to %d bytes)", ErrOverBudget, p.cfg.NodeBudget.Limit())
	}
	return nil
}

// admitWait is admit for the ingest consumer: it waits for room, which pauses
// fetching, instead of refusing.
func (p *Partition) admitWait(ctx context.Context, req *request) error {
	req.cost = cost(&req.Request)
	if err := p.budget.take(ctx, req.cost); err != nil {
		return err
	}
	if err := p.cfg.NodeBudget.take(ctx, req.cost); err != nil {
		p.budget.give(req.cost)
		return err
	}
	return nil
}

// refund gives req's bytes back to the partition's and the node's budgets.
func (p *Partition) refund(req *request) {
	if req.cost > 0 {
		p.budget.give(req.cost)
		p.cfg.NodeBudget.give(req.cost)
		req.cost = 0
	}
}
