package node

import (
	"context"
	"fmt"
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

// backupEvery backs up a partition of WAL none every BackupEvery when
// snapshot.Backups says one is due (serving, and changed since the last
// one), until it is released (h.ctx ends; its close takes the final one).
func (n *Node) backupEvery(h *held) {
	t := time.NewTicker(n.cfg.BackupEvery)
	defer t.Stop()
	log := n.cfg.Log.With().Uint32("partition", h.spec.ID).Uint64("epoch", h.spec.Epoch).Logger()
	var plan snapshot.Backups
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		if !plan.Due(h.p.Serving(), h.store) {
			continue
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
		plan.Uploaded(m)
		log.Debug().Str("snapshot", m.Name()).Int64("keys", m.Keys).Msg("backup uploaded")
	}
}

// seedHandoff loads an empty store of WAL disk or none from the bucket:
// snapshot.Seed's steps (the wait for a previous owner's final snapshot,
// the restore, the carry of removed partitions' slots), with a timer
// between them. A bucket that fails fails the seed (the restore is
// retried with a new one).
func (n *Node) seedHandoff(spec registry.Partition, st localStore) func(context.Context) (bool, error) {
	if n.bucket == nil {
		return nil
	}
	return func(ctx context.Context) (bool, error) {
		work := filepath.Join(n.cfg.DataDir, "restore", fmt.Sprintf("p%d", spec.ID))
		defer os.RemoveAll(work)
		seed := &snapshot.Seed{
			Bucket: n.bucket, Epoch: spec.Epoch, Timeout: n.cfg.HandoffTimeout, Work: work,
			// No changelog in these modes: no retention to respect.
			Want: snapshot.Want{Partition: spec.ID, Range: spec.Range, Slots: n.slots},
			Log:  n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger(),
		}
		for {
			done, handedOver, err := seed.Step(ctx, time.Now(), st)
			if err != nil || done {
				return handedOver, err
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(snapshot.SeedPoll):
			}
		}
	}
}

// announce records in the bucket, before the partition serves, that this
// node owns it at its epoch and has not stopped (snapshot.Bucket.Claim).
func (n *Node) announce(ctx context.Context, spec registry.Partition) error {
	if n.bucket == nil {
		return nil
	}
	return n.bucket.Claim(ctx, spec.ID, spec.Range, spec.Epoch, n.cfg.NodeID)
}
