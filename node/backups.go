package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/snapshot"
)

// Backups and hand-offs of partitions with no Kafka changelog to replay
// (--wal disk and none): the snapshot bucket is where their state survives
// the node (none) or moves to another one (both).

// backup snapshots st into the bucket as the partition's newest snapshot.
func (n *Node) backup(ctx context.Context, spec registry.Partition, st localStore, final bool) (snapshot.Manifest, error) {
	parent := filepath.Join(n.cfg.DataDir, "backups", fmt.Sprintf("p%d", spec.ID))
	m, dir, err := snapshot.Write(ctx, st, parent, snapshot.Manifest{
		Cluster: n.cfg.Cluster, Partition: spec.ID, Range: spec.Range, Slots: n.slots, Epoch: spec.Epoch, WAL: n.cfg.WAL, Final: final,
	})
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	return m, n.bucket.Upload(ctx, dir, m)
}

// backupHeld backs up a held partition; false if it is no longer held.
func (n *Node) backupHeld(h *held) (snapshot.Manifest, bool, error) {
	n.mu.Lock()
	held := n.parts[h.spec.ID] == h
	if held {
		h.busy.Add(1) // a release waits for the backup (after cancelling it)
	}
	n.mu.Unlock()
	if !held {
		return snapshot.Manifest{}, false, nil
	}
	defer h.busy.Done()
	m, err := n.backup(h.ctx, h.spec, h.store, false)
	return m, true, err
}

// backupEvery backs up a partition of WAL none every BackupEvery while it
// changed, until it is released (h.ctx ends; its close takes the final one).
func (n *Node) backupEvery(h *held) {
	t := time.NewTicker(n.cfg.BackupEvery)
	defer t.Stop()
	log := n.cfg.Log.With().Uint32("partition", h.spec.ID).Uint64("epoch", h.spec.Epoch).Logger()
	var last map[int32]int64
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		if !h.p.Serving() {
			continue // restoring: the bucket already holds what it has
		}
		if now, err := h.store.Offsets(); err != nil || maps.Equal(now, last) {
			continue // nothing new since the last backup
		}
		m, held, err := n.backupHeld(h)
		if !held {
			return
		}
		if err != nil {
			if h.ctx.Err() == nil {
				log.Error().Err(err).Msg("backup failed; a crash now loses the writes since the last one")
			}
			continue
		}
		last = m.Offsets
		log.Debug().Str("snapshot", m.Name()).Int64("keys", m.Keys).Msg("backup uploaded")
	}
}

// seedHandoff loads an empty store of WAL disk or none from the bucket
// (snapshot/handoff.go). When the partition's owner record names an older
// owner that has not finished, that owner may be handing the partition over
// right now: wait for its final snapshot, up to HandoffTimeout, then take
// the newest valid one. A bucket that fails fails the seed (the restore is
// retried): starting empty would lose everything, and backups of the empty
// state would then push the good ones out of the bucket.
//
// handedOver: the record was final and of the epoch just before this one.
// That owner stopped serving before its final snapshot (its store closed),
// and it alone held that epoch; any owner before it was waited out by it.
// So no process can still answer for the partition: the new owner need not
// wait out the ownership lease (a planned move takes a moment, not 10 s).
func (n *Node) seedHandoff(spec registry.Partition, st localStore) func(context.Context) (bool, error) {
	if n.bucket == nil {
		return nil
	}
	return func(ctx context.Context) (handedOver bool, err error) {
		log := n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
		deadline, logged := time.Now().Add(n.cfg.HandoffTimeout), time.Time{}
		for {
			o, ok, err := n.bucket.Owner(ctx, spec.ID)
			if err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
				return false, err
			}
			if err != nil || !ok || o.Final || o.Epoch >= spec.Epoch {
				handedOver = err == nil && ok && o.Final && o.Epoch+1 == spec.Epoch
				break
			}
			if time.Now().After(deadline) {
				log.Warn().Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Dur("waited", n.cfg.HandoffTimeout).
					Msg("the previous owner's final snapshot did not come: restoring the newest one; what it acknowledged after that is lost")
				break
			}
			if time.Since(logged) > 5*time.Second {
				logged = time.Now()
				log.Info().Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Msg("waiting for the previous owner's final snapshot")
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		work := filepath.Join(n.cfg.DataDir, "restore", fmt.Sprintf("p%d", spec.ID))
		defer os.RemoveAll(work)
		// No changelog in these modes: no retention to respect.
		want := snapshot.Want{Partition: spec.ID, Range: spec.Range, Slots: n.slots}
		_, ok, err := n.bucket.Restore(ctx, want, st, work, log)
		if err != nil || ok {
			return handedOver && ok, err
		}
		return false, n.carrySlots(ctx, spec, want, st, work)
	}
}

// carrySlots loads a partition with no snapshot of its own (a new one) with
// the data its slots held in partitions removed before it (snapshot/carry.go):
// the data follows the slots, as the changelog does with --wal kafka. A
// removed partition's owner may still be uploading its final snapshot (the
// removal closed it a moment ago): wait for it, up to HandoffTimeout, as for
// a hand-off of the partition's own.
func (n *Node) carrySlots(ctx context.Context, spec registry.Partition, want snapshot.Want, st localStore, work string) error {
	log := n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
	deadline, logged := time.Now().Add(n.cfg.HandoffTimeout), time.Time{}
	for {
		pending, err := n.bucket.Unfinished(ctx, want, spec.Epoch)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for id, o := range pending {
				log.Warn().Uint32("previous_partition", id).Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Dur("waited", n.cfg.HandoffTimeout).
					Msg("a removed partition over these slots never uploaded its final snapshot: carrying its newest one over; what it acknowledged after that is lost")
			}
			break
		}
		if time.Since(logged) > 5*time.Second {
			logged = time.Now()
			for id, o := range pending {
				log.Info().Uint32("previous_partition", id).Str("previous_owner", o.Node).Uint64("previous_epoch", o.Epoch).Msg("waiting for the final snapshot of a removed partition over these slots")
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	_, err := n.bucket.Carry(ctx, want, st, work, log)
	return err
}

// announce records in the bucket, before the partition serves, that this
// node owns it at its epoch and has not stopped: a later owner then waits
// for this one's final snapshot. Without it a later owner would restore the
// final snapshot of the owner before, without this one's writes.
func (n *Node) announce(ctx context.Context, spec registry.Partition) error {
	if n.bucket == nil {
		return nil
	}
	if o, ok, err := n.bucket.Owner(ctx, spec.ID); err == nil && ok && o.Epoch == spec.Epoch && !o.Final && o.Node == n.cfg.NodeID {
		return nil // already ours
	}
	return n.bucket.Announce(ctx, spec.ID, spec.Range, spec.Epoch, n.cfg.NodeID)
}
