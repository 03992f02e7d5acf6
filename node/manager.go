package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/store"
)

// manage is the partition manager: on every registry change it reconciles
// what the node holds with what the registry assigns it.
func (n *Node) manage() {
	defer n.wg.Done()
	for {
		changed := n.registry.Changed()
		select {
		case <-n.stop:
			return
		case <-changed:
		}
		n.reconcile(false)
	}
}

// role is what this node is for a partition.
type role uint8

const (
	owner role = iota + 1
	standby
)

// want is a partition this node holds or should hold, and as what.
type want struct {
	spec registry.Partition
	role role
}

// op is one step of a reconcile.
type op struct {
	kind string // add, del, update, promote, demote, standby
	spec registry.Partition
}

// delta computes the ops that take current to desired: Add what is assigned
// and not held, Del what is held and not assigned, Update an owned partition
// whose entry changed (epoch, range), Promote a standby that became the owner
// (it replays only the tail), Demote an owner that keeps a standby, Standby a
// new standby.
func delta(current, desired map[uint32]want) []op {
	var ops []op
	for id, c := range current {
		d, ok := desired[id]
		switch {
		case !ok:
			ops = append(ops, op{"del", c.spec})
		case c.role == standby && d.role == owner:
			ops = append(ops, op{"promote", d.spec})
		case c.role == owner && d.role == standby:
			ops = append(ops, op{"demote", d.spec})
		case d.role == owner && !d.spec.Equal(c.spec):
			ops = append(ops, op{"update", d.spec})
		case d.role == standby && d.spec.Range != c.spec.Range:
			ops = append(ops, op{"del", c.spec}, op{"standby", d.spec})
		}
	}
	for id, d := range desired {
		if _, ok := current[id]; !ok {
			kind := "add"
			if d.role == standby {
				kind = "standby"
			}
			ops = append(ops, op{kind, d.spec})
		}
	}
	return ops
}

// reconcile brings the routing table and the held partitions in line with the
// registry. At start it also removes partition directories no longer assigned.
func (n *Node) reconcile(starting bool) {
	v := n.registry.View()
	n.updateTable(v)
	desired := map[uint32]want{}
	for _, p := range v.Partitions {
		switch {
		case p.Owner == n.cfg.NodeID:
			desired[p.ID] = want{p, owner}
		case p.HasStandby(n.cfg.NodeID):
			desired[p.ID] = want{p, standby}
		}
	}
	if starting {
		n.removeStaleDirs(desired)
	}
	n.mu.RLock()
	current := make(map[uint32]want, len(n.parts))
	for id, h := range n.parts {
		r := owner
		if h.sb != nil {
			r = standby
		}
		current[id] = want{h.spec, r}
	}
	n.mu.RUnlock()
	for _, o := range delta(current, desired) {
		n.cfg.Log.Info().Str("op", o.kind).Uint32("partition", o.spec.ID).Uint64("epoch", o.spec.Epoch).Stringer("range", o.spec.Range).Msg("partition manager")
		switch o.kind {
		case "del":
			n.release(o.spec.ID, true)
		case "update", "demote":
			n.release(o.spec.ID, false)
			n.open(o.spec, o.kind == "demote")
		case "promote":
			n.promote(o.spec)
		case "add":
			n.open(o.spec, false)
		case "standby":
			n.open(o.spec, true)
		}
	}
	// A standby's entry may change (a new epoch, other standbys) without any op.
	n.mu.Lock()
	for id, h := range n.parts {
		if d, ok := desired[id]; ok && h.sb != nil {
			h.spec = d.spec
		}
	}
	n.mu.Unlock()
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

func (n *Node) partitionDir(id uint32) string {
	return filepath.Join(n.cfg.DataDir, "partitions", "p"+strconv.FormatUint(uint64(id), 10))
}

// release stops a held partition (gracefully: what is in flight finishes) or
// standby and, when it moved away or was removed, deletes its directory.
func (n *Node) release(id uint32, wipe bool) {
	n.mu.Lock()
	h, ok := n.parts[id]
	delete(n.parts, id)
	n.mu.Unlock()
	if !ok {
		return
	}
	h.busy.Wait()
	if h.sb != nil {
		h.sb.Close()
		h.store.Close()
	} else {
		h.p.Close() // closes the store
	}
	if wipe {
		if err := os.RemoveAll(n.partitionDir(id)); err != nil {
			n.cfg.Log.Error().Err(err).Uint32("partition", id).Msg("removing a released partition's directory")
		}
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
			n.cfg.Log.Info().Uint32("partition", uint32(id)).Msg("partition manager: removing a partition no longer assigned here")
			os.RemoveAll(n.partitionDir(uint32(id)))
		}
	}
}

// open opens spec's store (wiping one written for another range) and starts
// the partition, which restores and then serves, or a standby of it.
func (n *Node) open(spec registry.Partition, asStandby bool) {
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
	st, err := store.OpenBadger(store.BadgerOptions(filepath.Join(dir, "badger")))
	if err != nil {
		n.cfg.Log.Error().Err(err).Uint32("partition", spec.ID).Msg("opening the partition's store")
		return
	}
	if asStandby {
		n.startStandby(spec, st)
		return
	}
	n.startPartition(spec, st)
}

// startStandby tails spec's changelog into st.
func (n *Node) startStandby(spec registry.Partition, st *store.Badger) {
	sb := partition.StartStandby(partition.StandbyConfig{ID: spec.ID, Range: spec.Range, Store: st, Log: n.cfg.Log, Tail: n.tail()})
	n.mu.Lock()
	n.parts[spec.ID] = &held{sb: sb, spec: spec, store: st}
	n.mu.Unlock()
}

// promote turns the standby of spec into its owner on the same store: the
// restore replays only the tail the standby had not yet applied.
func (n *Node) promote(spec registry.Partition) {
	n.mu.Lock()
	h, ok := n.parts[spec.ID]
	delete(n.parts, spec.ID)
	n.mu.Unlock()
	if !ok || h.sb == nil {
		n.open(spec, false)
		return
	}
	h.busy.Wait()
	h.sb.Close()
	n.startPartition(spec, h.store)
}

// startPartition starts the owner's partition on st.
func (n *Node) startPartition(spec registry.Partition, st *store.Badger) {
	p := partition.Start(partition.Config{
		ID: spec.ID, Range: spec.Range, Slots: n.slots, Epoch: spec.Epoch, Store: st, Lease: n.cfg.Lease, Stages: n.cfg.Stages,
		NewAppender: n.newAppender(spec.ID),
		Replay:      n.replay(),
		Ingest:      n.consumeIngest(),
		Owns: func(ctx context.Context) error {
			if err := n.registry.CatchUp(ctx); err != nil {
				return err
			}
			if now := n.registry.View().Partitions[spec.ID]; now.Owner != spec.Owner || now.Epoch != spec.Epoch {
				return fmt.Errorf("%w: the registry gives partition %d to %q at epoch %d", partition.ErrDeposed, spec.ID, now.Owner, now.Epoch)
			}
			return nil
		},
		Seed:    n.seed(spec, st),
		Log:     n.cfg.Log,
		Metrics: n.metrics,
	})
	n.mu.Lock()
	n.parts[spec.ID] = &held{p: p, spec: spec, store: st}
	n.mu.Unlock()
}

// seed restores an empty store from the newest valid snapshot in the bucket.
func (n *Node) seed(spec registry.Partition, st *store.Badger) func(context.Context) error {
	if n.bucket == nil {
		return nil
	}
	return func(ctx context.Context) error {
		work := filepath.Join(n.cfg.DataDir, "restore", fmt.Sprintf("p%d", spec.ID))
		defer os.RemoveAll(work)
		_, _, err := n.bucket.Restore(ctx, spec.ID, spec.Range, st, work, n.cfg.Log.With().Uint32("partition", spec.ID).Logger())
		return err
	}
}
