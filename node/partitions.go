package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/snapshot"
)

// This file is the node's side of the partition manager (its executor):
// opening, releasing and promoting partitions and their stores.

func (n *Node) partitionDir(id uint32) string {
	return filepath.Join(n.cfg.DataDir, "partitions", "p"+strconv.FormatUint(uint64(id), 10))
}

// release stops a held partition (gracefully: what is in flight finishes) or
// standby and, when it moved away or was removed, deletes its directory. A
// snapshot of it still running is cancelled first: a hung blob store must
// not hold the partition (and its store) open.
func (n *Node) release(id uint32, wipe bool) {
	n.mu.Lock()
	h, ok := n.parts[id]
	delete(n.parts, id)
	n.mu.Unlock()
	if !ok {
		return
	}
	h.stopSnapshots(fmt.Errorf("%w: partition %d was released", snapshot.ErrCancelled, id))
	h.busy.Wait()
	if h.sb != nil {
		h.sb.Close()
		h.store.Close()
	} else {
		h.p.Close() // closes the store
	}
	if wipe {
		n.wipeCache(id)
		if err := os.RemoveAll(n.partitionDir(id)); err != nil {
			n.cfg.Log.Error().Err(err).Uint32("partition", id).Uint64("epoch", h.spec.Epoch).Msg("removing a released partition's directory")
		}
	}
}

// stopSnapshots cancels the snapshots (and their uploads) of h.
func (h *held) stopSnapshots(cause error) {
	if h.cancel != nil {
		h.cancel(cause)
	}
}

// respec records a standby's new registry entry (new epoch, other standbys):
// nothing to restart.
func (n *Node) respec(spec registry.Partition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h, ok := n.parts[spec.ID]; ok && h.sb != nil {
		h.spec = spec
	}
}

// dirMeta is kept in a partition's directory: what its data was opened for.
type dirMeta struct {
	Spec registry.Partition `json:"partition"`
}

// removeStaleDirs deletes partition directories the registry no longer assigns
// to this node (CurrentState on disk minus NewState).
func (n *Node) removeStaleDirs(desired map[uint32]want) {
	entries, _ := os.ReadDir(filepath.Join(n.cfg.DataDir, "partitions"))
	for _, e := range entries {
		id, err := strconv.ParseUint(strings.TrimPrefix(e.Name(), "p"), 10, 32)
		if err != nil || !strings.HasPrefix(e.Name(), "p") {
			continue
		}
		if _, ok := desired[uint32(id)]; !ok {
			var meta dirMeta // the epoch its data was last opened for, if it says
			if b, err := os.ReadFile(filepath.Join(n.partitionDir(uint32(id)), "partition.json")); err == nil {
				_ = json.Unmarshal(b, &meta)
			}
			n.cfg.Log.Info().Uint32("partition", uint32(id)).Uint64("epoch", meta.Spec.Epoch).Msg("partition manager: removing a partition no longer assigned here")
			os.RemoveAll(n.partitionDir(uint32(id)))
		}
	}
}

// open opens spec's store (wiping one written for another range) and starts
// the partition, which restores and then serves, or a standby of it.
func (n *Node) open(spec registry.Partition, asStandby bool) error {
	dir := n.partitionDir(spec.ID)
	metaPath := filepath.Join(dir, "partition.json")
	var meta dirMeta
	if b, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(b, &meta) == nil && meta.Spec.Range != spec.Range {
		os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		b, _ := json.Marshal(dirMeta{Spec: spec})
		_ = os.WriteFile(metaPath, b, 0o644)
	}
	st, err := n.openStore(spec.ID, dir, asStandby)
	if err != nil {
		return fmt.Errorf("opening the partition's store: %w", err)
	}
	if asStandby {
		n.startStandby(spec, st)
		return nil
	}
	if err := n.startPartition(spec, st); err != nil {
		st.Close()
		return err
	}
	return nil
}

// startStandby tails spec's changelog into st.
func (n *Node) startStandby(spec registry.Partition, st localStore) {
	sb := partition.StartStandby(partition.StandbyConfig{ID: spec.ID, Range: spec.Range, Epoch: spec.Epoch, Store: st, Log: n.cfg.Log, Tail: n.tail(), Retention: n.retention})
	n.mu.Lock()
	n.parts[spec.ID] = &held{sb: sb, spec: spec, store: st}
	n.mu.Unlock()
}

// promote turns the standby of spec into its owner on the same store: the
// restore replays only the tail the standby had not yet applied.
func (n *Node) promote(spec registry.Partition) error {
	n.mu.Lock()
	h, ok := n.parts[spec.ID]
	delete(n.parts, spec.ID)
	n.mu.Unlock()
	if !ok || h.sb == nil {
		return n.open(spec, false)
	}
	h.busy.Wait()
	h.sb.Close()
	return n.startPartition(spec, h.store)
}

// startPartition starts the owner's partition on st, in the node's storage
// mode (modes.go).
func (n *Node) startPartition(spec registry.Partition, st localStore) error {
	cfg := partition.Config{
		ID: spec.ID, Range: spec.Range, Slots: n.slots, Epoch: spec.Epoch, Store: st, Lease: n.cfg.Lease, Stages: n.cfg.Stages,
		MaxQueuedBytes: n.cfg.PartitionBudget, NodeBudget: n.budget,
		// Ownership and fencing, in the order fencing.go explains.
		Owns:        n.owns(spec),
		FenceOthers: n.fenceOthers(spec),
		NewAppender: n.ownAppender(spec),
		Replay:      n.replay(),
		Ingest:      n.consumeIngest(),
		Seed:        n.seed(spec, st),
		Retention:   n.retention,
		Log:         n.cfg.Log,
		Metrics:     n.metrics,
	}
	if err := n.applyMode(spec, st, &cfg); err != nil {
		return err
	}
	p := partition.Start(cfg)
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &held{p: p, spec: spec, store: st, ctx: ctx, cancel: cancel}
	n.mu.Lock()
	n.parts[spec.ID] = h
	n.mu.Unlock()
	n.afterStart(h)
	return nil
}

// seed restores an empty store from the newest valid snapshot in the bucket
// (of this partition's range and slot count, younger than the changelog's
// delete.retention.ms).
// A bucket that fails (it does not answer within BlobTimeout, or errs) is
// logged and skipped: the partition then replays the whole changelog, which
// is slower but complete (the changelog is compacted, and a replay that
// needs an offset no longer there stops with an error naming it). Only a
// store left holding part of a snapshot fails the seed, and the restore is
// tried again.
func (n *Node) seed(spec registry.Partition, st localStore) func(context.Context) error {
	if n.bucket == nil {
		return nil
	}
	return func(ctx context.Context) error {
		work := filepath.Join(n.cfg.DataDir, "restore", fmt.Sprintf("p%d", spec.ID))
		defer os.RemoveAll(work)
		log := n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
		want := snapshot.Want{Partition: spec.ID, Range: spec.Range, Slots: n.slots, MaxAge: n.retention}
		_, _, err := n.bucket.Restore(ctx, want, st, work, log)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil, errors.Is(err, snapshot.ErrStoreDirty):
			return err
		}
		log.Warn().Err(err).Str("fallback", "changelog").Msg("the snapshot bucket failed: restoring from the whole changelog instead")
		return nil
	}
}

func (n *Node) updateTable(v *registry.View) {
	routes := make([]router.Partition, 0, len(v.Partitions))
	for _, p := range v.Partitions {
		r := router.Partition{ID: p.ID, Range: p.Range, Epoch: p.Epoch, Node: p.Owner, Addr: v.Nodes[p.Owner].DataAddr, Standbys: p.Standbys}
		for _, s := range p.Standbys {
			r.StandbyAddrs = append(r.StandbyAddrs, v.Nodes[s].DataAddr)
		}
		routes = append(routes, r)
	}
	t, err := router.NewTable(n.slots, routes)
	if err != nil {
		n.cfg.Log.Error().Err(err).Msg("registry view does not make a routing table; keeping the old one")
		return
	}
	n.table.Store(t)
}
