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
		Cluster: n.cfg.Cluster, Partition: spec.ID, Range: spec.Range, Epoch: spec.Epoch, WAL: n.cfg.WAL, Final: final,
	})
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	return m, n.bucket.Upload(ctx, dir, m)
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
		n.mu.Lock()
		held := n.parts[h.spec.ID] == h
		if held {
			h.busy.Add(1) // a release waits for the backup (after cancelling it)
		}
		n.mu.Unlock()
		if !held {
			return
		}
		m, err := n.backup(h.ctx, h.spec, h.store, false)
		h.busy.Done()
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

// seedHandoff loads an empty store of WAL disk or none from the bucket.
// When the newest snapshot there is another owner's (an older epoch) and not
// its final one, that owner may be handing the partition over right now: wait
// for its final snapshot, up to HandoffTimeout, then take the newest valid
// one. A bucket that fails fails the seed (the restore is retried): starting
// empty would lose everything, and backups of the empty state would then
// push the good ones out of the bucket.
func (n *Node) seedHandoff(spec registry.Partition, st localStore) func(context.Context) error {
	if n.bucket == nil {
		return nil
	}
	return func(ctx context.Context) error {
		log := n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
		deadline, logged := time.Now().Add(n.cfg.HandoffTimeout), time.Time{}
		for {
			m, ok, err := n.bucket.Newest(ctx, spec.ID)
			if err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
				return err
			}
			if err != nil || !ok || m.Final || m.Epoch >= spec.Epoch {
				break // nothing to wait for; Restore skips a corrupt newest one
			}
			if time.Now().After(deadline) {
				log.Warn().Str("snapshot", m.Name()).Uint64("snapshot_epoch", m.Epoch).Dur("waited", n.cfg.HandoffTimeout).
					Msg("the previous owner's final snapshot did not come: restoring its newest one; what it acknowledged after that is lost")
				break
			}
			if time.Since(logged) > 5*time.Second {
				logged = time.Now()
				log.Info().Str("newest", m.Name()).Uint64("snapshot_epoch", m.Epoch).Msg("waiting for the previous owner's final snapshot")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		work := filepath.Join(n.cfg.DataDir, "restore", fmt.Sprintf("p%d", spec.ID))
		defer os.RemoveAll(work)
		_, _, err := n.bucket.Restore(ctx, spec.ID, spec.Range, st, work, log)
		return err
	}
}
