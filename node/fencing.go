package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/wal"
)

// Fencing follows slots, not partition ids (registry/writers.go). A
// partition's restore (partition/restore.go) runs, in order:
//
//  1. owns: a fresh read of the registry still gives it the partition at its
//     epoch (a partition removed since is not in it: deposed);
//  2. fenceOthers: InitProducerID on every other transactional id the
//     registry ever gave an overlapping range before this epoch;
//  3. its own appender, which fences older producers of its own id;
//  4. owns again.
//
// The second owns (partition/restore.go) closes a race the first leaves open. A deposed owner may
// pass step 1 just before its removal; a new owner added over its slots
// then fences its id; and the deposed one's step 3 would raise a fresh,
// valid producer under that id afterwards: two owners with live producers
// over the same slots. Checked after its own InitProducerID instead, either
// the registry read comes after the new owner's entry (deposed), or it came
// before, so the new owner's fence of this id comes after this producer was
// made and fences it.

// owns is the check of steps 1 and 3: the registry, read fresh, still gives
// spec's partition to this node at spec's epoch.
func (n *Node) owns(spec registry.Partition) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := n.registry.CatchUp(ctx); err != nil {
			return err
		}
		now, ok := n.registry.View().Partitions[spec.ID]
		if !ok {
			return fmt.Errorf("%w: partition %d was removed from the registry", partition.ErrDeposed, spec.ID)
		}
		if now.Owner != spec.Owner || now.Epoch != spec.Epoch {
			return fmt.Errorf("%w: the registry gives partition %d to %q at epoch %d", partition.ErrDeposed, spec.ID, now.Owner, now.Epoch)
		}
		return nil
	}
}

// fenceOthers is step 2: it fences, in parallel, every older writer of an
// overlapping range, from a fresh read of the registry (every such writer
// was recorded before this partition's own entry, which step 1 saw).
func (n *Node) fenceOthers(spec registry.Partition) func(context.Context) error {
	self := n.topics.TransactionalID(spec.ID)
	return func(ctx context.Context) error {
		if err := n.registry.CatchUp(ctx); err != nil {
			return err
		}
		ids := n.registry.View().Fences(spec.Range, spec.Epoch, self)
		if len(ids) == 0 {
			return nil
		}
		n.cfg.Log.Debug().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Strs("writers", ids).Msg("fencing older writers of the slots")
		errs := make([]error, len(ids))
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				errs[i] = slowFencing(ctx, func() error { return changelog.Fence(ctx, n.kafkaOpts(), id) })
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

// ownAppender is step 3: the partition's appender, fencing older producers
// of its own transactional id (slowed by the test hook, if set).
func (n *Node) ownAppender(spec registry.Partition) func(context.Context) (wal.Appender, error) {
	newAppender := n.newAppender(spec.ID)
	return func(ctx context.Context) (wal.Appender, error) {
		var app wal.Appender // set only when made: the error path returns a typed nil
		err := slowFencing(ctx, func() error {
			a, err := newAppender(ctx)
			if err == nil {
				app = a
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		return app, nil
	}
}

// SlowFencingEnv names a test hook, off unless set: a duration d such that
// every fence (InitProducerID) this node asks for is sent up to d late, and
// its return seen up to d late, each at random. The chaos campaign sets it
// to play a broker slow to fence.
const SlowFencingEnv = "SLUICE_TEST_SLOW_FENCING"

// slowFencing runs fence, delayed as SlowFencingEnv asks.
func slowFencing(ctx context.Context, fence func() error) error {
	d, err := time.ParseDuration(os.Getenv(SlowFencingEnv))
	if err != nil || d <= 0 {
		return fence()
	}
	pause := func() error {
		select {
		case <-time.After(rand.N(d)):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := pause(); err != nil {
		return err
	}
	if err := fence(); err != nil {
		return err
	}
	return pause()
}
