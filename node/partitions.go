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
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/partition/core"
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

// dirMeta is kept in a partition's directory: what its data was opened for,
// and whether it has served that entry (its owner and epoch) here, under
// which incarnation of the node (incarnation.go).
type dirMeta struct {
	Spec        registry.Partition `json:"partition"`
	Served      bool               `json:"served,omitempty"`
	Incarnation uint64             `json:"incarnation,omitempty"`
}

// writeMeta replaces dir's partition.json whole (a crash leaves the old or
// the new one).
func writeMeta(dir string, meta dirMeta) error {
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "partition.json")
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
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
	var meta dirMeta
	if b, err := os.ReadFile(filepath.Join(dir, "partition.json")); err == nil && json.Unmarshal(b, &meta) == nil && meta.Spec.Range != spec.Range {
		os.RemoveAll(dir)
	}
	// A node restarted on its own disk whose store last served this very
	// owner and epoch needs no read-lease wait, if the record was written by
	// the node's previous incarnation on this same directory, whose lock it
	// now holds (resumable): that process is gone, no other process of the
	// id registered since, and its first start at this epoch waited the lease
	// out. A copied directory, a second process of the id, a move, a
	// promotion or a new epoch finds no such record and waits. The record is
	// carried to this incarnation at once: its own restart may skip too.
	resumed := !asStandby && meta.Served && n.resumable(meta.Incarnation) &&
		meta.Spec.Owner == spec.Owner && meta.Spec.Epoch == spec.Epoch && meta.Spec.Range == spec.Range
	if err := os.MkdirAll(dir, 0o755); err == nil {
		rec := dirMeta{Spec: spec}
		if resumed {
			rec.Served, rec.Incarnation = true, n.inc.N
		}
		_ = writeMeta(dir, rec)
	}
	st, err := n.openStore(spec.ID, dir, asStandby)
	if err != nil {
		return fmt.Errorf("opening the partition's store: %w", err)
	}
	if asStandby {
		n.startStandby(spec, st)
		return nil
	}
	if err := n.startPartition(spec, st, resumed); err != nil {
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
	_ = writeMeta(n.partitionDir(spec.ID), dirMeta{Spec: spec})
	return n.startPartition(spec, h.store, false)
}

// startPartition starts the owner's partition on st, in the node's storage
// mode (modes.go); resumed skips its first read-lease wait (see open), and
// so does a brand-new cluster's first owner (registry/firstowner.go).
func (n *Node) startPartition(spec registry.Partition, st localStore, resumed bool) error {
	cfg := partition.Config{
		Config:         core.Config{ID: spec.ID, Range: spec.Range, Slots: n.slots, Epoch: spec.Epoch, Lease: n.cfg.Lease, Stages: n.cfg.Stages},
		Store:          st,
		MaxQueuedBytes: n.cfg.PartitionBudget, NodeBudget: n.budget,
		ReadCache:     n.readCache,
		SkipLeaseWait: resumed || n.firstOwner(spec),
		// Ownership and fencing, in the order fencing.go explains.
		Owns:    n.owns(spec),
		WAL:     n.changelogLog(spec),
		Ingest:  n.ingestSource(),
		Seed:    n.seed(spec, st),
		Log:     n.cfg.Log,
		Metrics: n.metrics,
	}
	if err := n.applyMode(spec, st, &cfg); err != nil {
		return err
	}
	p := partition.Start(cfg)
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &held{p: p, spec: spec, store: st, ctx: ctx, cancel: cancel}
	h.recorded.Store(resumed)
	n.mu.Lock()
	n.parts[spec.ID] = h
	n.mu.Unlock()
	n.afterStart(h)
	if !resumed {
		n.wg.Add(1)
		go n.markServed(h)
	}
	return nil
}

// markServed records in the partition's directory once h's partition
// serves: from then on a restart of this node at the same epoch may skip the
// read-lease wait. The node counts the partition as serving (Ready, health)
// only once it is recorded, so a node killed as soon as it reports serving
// is back without the wait.
func (n *Node) markServed(h *held) {
	defer n.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !h.p.Serving() {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if now, ok := n.heldPart(h.spec.ID); !ok || now != h {
			return // released or replaced
		}
	}
	if err := writeMeta(n.partitionDir(h.spec.ID), dirMeta{Spec: h.spec, Served: true, Incarnation: n.inc.N}); err != nil {
		n.cfg.Log.Warn().Err(err).Uint32("partition", h.spec.ID).Uint64("epoch", h.spec.Epoch).Msg("recording that the partition served: its next start waits the read lease")
	}
	h.recorded.Store(true)
}

// heldPart returns what the node holds of partition id.
func (n *Node) heldPart(id uint32) (*held, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok := n.parts[id]
	return h, ok
}

// partitionLog is the node's logger with spec's id and epoch.
func (n *Node) partitionLog(spec registry.Partition) zerolog.Logger {
	return n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
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
func (n *Node) seed(spec registry.Partition, st localStore) func(context.Context) (bool, error) {
	if n.bucket == nil {
		return nil
	}
	return func(ctx context.Context) (bool, error) {
		work := filepath.Join(n.cfg.DataDir, "restore", fmt.Sprintf("p%d", spec.ID))
		defer os.RemoveAll(work)
		log := n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
		want := snapshot.Want{Partition: spec.ID, Range: spec.Range, Slots: n.slots, MaxAge: n.retention}
		_, _, err := n.bucket.Restore(ctx, want, st, work, log)
		switch {
		case err == nil:
			return false, nil
		case ctx.Err() != nil, errors.Is(err, snapshot.ErrStoreDirty):
			return false, err
		}
		log.Warn().Err(err).Str("fallback", "changelog").Msg("the snapshot bucket failed: restoring from the whole changelog instead")
		return false, nil
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
