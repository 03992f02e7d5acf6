package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/ingest"
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

// op is one step of a reconcile.
type op struct {
	kind string // "add", "del", "update"
	spec registry.Partition
}

// delta computes the ops that take current to desired: Add what is assigned
// and not held, Del what is held and not assigned, Update what is held under
// another range or epoch.
func delta(current map[uint32]registry.Partition, desired map[uint32]registry.Partition) []op {
	var ops []op
	for id, c := range current {
		d, ok := desired[id]
		switch {
		case !ok:
			ops = append(ops, op{"del", c})
		case d != c:
			ops = append(ops, op{"update", d})
		}
	}
	for id, d := range desired {
		if _, ok := current[id]; !ok {
			ops = append(ops, op{"add", d})
		}
	}
	return ops
}

// reconcile brings the routing table and the held partitions in line with the
// registry. At start it also removes partition directories no longer assigned.
func (n *Node) reconcile(starting bool) {
	v := n.registry.View()
	n.updateTable(v)
	desired := map[uint32]registry.Partition{}
	for _, p := range v.Partitions {
		if p.Owner == n.cfg.NodeID {
			desired[p.ID] = p
		}
	}
	if starting {
		n.removeStaleDirs(desired)
	}
	n.mu.RLock()
	current := make(map[uint32]registry.Partition, len(n.parts))
	for id, h := range n.parts {
		current[id] = h.spec
	}
	n.mu.RUnlock()
	for _, o := range delta(current, desired) {
		log := n.cfg.Log.Info().Str("op", o.kind).Uint32("partition", o.spec.ID).Uint64("epoch", o.spec.Epoch).Stringer("range", o.spec.Range)
		switch o.kind {
		case "del":
			log.Msg("partition manager: releasing partition")
			n.release(o.spec.ID, true)
		case "update":
			log.Msg("partition manager: reopening partition")
			n.release(o.spec.ID, false)
			n.open(o.spec)
		case "add":
			log.Msg("partition manager: opening partition")
			n.open(o.spec)
		}
	}
}

func (n *Node) updateTable(v *registry.View) {
	routes := make([]router.Partition, 0, len(v.Partitions))
	for _, p := range v.Partitions {
		routes = append(routes, router.Partition{ID: p.ID, Range: p.Range, Epoch: p.Epoch, Node: p.Owner, Addr: v.Nodes[p.Owner].DataAddr})
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

// release stops a held partition (gracefully: what is in flight finishes) and,
// when it moved away or was removed, deletes its directory.
func (n *Node) release(id uint32, wipe bool) {
	n.mu.Lock()
	h, ok := n.parts[id]
	delete(n.parts, id)
	n.mu.Unlock()
	if !ok {
		return
	}
	h.busy.Wait()
	h.p.Close()
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
func (n *Node) removeStaleDirs(desired map[uint32]registry.Partition) {
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
// the partition, which restores and then serves.
func (n *Node) open(spec registry.Partition) {
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
	opts := n.kafkaOpts()
	topic := n.topics.Changelog()
	txnID := n.topics.TransactionalID(spec.ID)
	p := partition.Start(partition.Config{
		ID: spec.ID, Range: spec.Range, Slots: n.slots, Epoch: spec.Epoch, Topic: topic, Store: st, Lease: n.cfg.Lease,
		NewAppender: func(ctx context.Context) (partition.Appender, error) {
			return changelog.NewAppender(ctx, changelog.AppenderConfig{Client: opts, TransactionalID: txnID})
		},
		Replay: func(ctx context.Context, from map[int32]int64, fn func(changelog.Batch) error) (map[int32]int64, error) {
			return changelog.Replay(ctx, opts, topic, from, fn)
		},
		Ingest: func(ctx context.Context, from map[int32]int64, deliver func([]partition.IngestRecord) error) error {
			return ingest.Consume(ctx, ingest.Config{Client: opts, Topic: n.topics.Ingest(), Lag: n.ingestLag}, from, deliver)
		},
		Owns: func(ctx context.Context) error {
			if err := n.registry.CatchUp(ctx); err != nil {
				return err
			}
			if now := n.registry.View().Partitions[spec.ID]; now.Owner != spec.Owner || now.Epoch != spec.Epoch {
				return fmt.Errorf("%w: the registry gives partition %d to %q at epoch %d", partition.ErrDeposed, spec.ID, now.Owner, now.Epoch)
			}
			return nil
		},
		Seed:        n.seed(spec, st),
		IngestTopic: n.topics.Ingest(),
		DLQTopic:    n.topics.DLQ(),
		Log:         n.cfg.Log,
		Metrics:     n.metrics,
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
