package node

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"

	"google.golang.org/protobuf/proto"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
	"github.com/sluicedb/sluice/snapshot"
)

// operations are the node's long-running operations, kept in memory.
type operations struct {
	mu   sync.Mutex
	next int
	ops  map[string]*sluicev1.Operation
}

func (o *operations) start(node string) *sluicev1.Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ops == nil {
		o.ops = map[string]*sluicev1.Operation{}
	}
	o.next++
	op := &sluicev1.Operation{Id: fmt.Sprintf("%s/%d", node, o.next), State: "running"}
	o.ops[op.Id] = op
	return proto.Clone(op).(*sluicev1.Operation)
}

func (o *operations) finish(id, result string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	op := o.ops[id]
	op.State, op.Result = "done", result
	if err != nil {
		op.State, op.Error = "failed", err.Error()
	}
}

// Operation reports an operation this node runs (server.Cluster).
func (n *Node) Operation(id string) (*sluicev1.Operation, bool) {
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	op, ok := n.ops.ops[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(op).(*sluicev1.Operation), true
}

// StartSnapshot snapshots a partition this node holds into
// path/p<id>/<name>, path taken under the snapshot root (SnapshotRoot), then
// uploads it to the snapshot bucket if there is one (server.Cluster). The
// partition keeps serving. Releasing the partition cancels the snapshot and
// its upload: a hung blob store never holds a partition (server.Cluster).
func (n *Node) StartSnapshot(id uint32, path string) (*sluicev1.Operation, error) {
	parent, err := snapshot.Confine(n.cfg.SnapshotRoot, path)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	h, ok := n.parts[id]
	ok = ok && h.p != nil
	if ok {
		h.busy.Add(1)
	}
	n.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: partition %d is not held by node %s", server.ErrNotHeld, id, n.cfg.NodeID)
	}
	op := n.ops.start(n.cfg.NodeID)
	go func() {
		defer h.busy.Done()
		ctx := h.ctx
		m, dir, err := snapshot.Write(ctx, h.store, filepath.Join(parent, fmt.Sprintf("p%d", id)), snapshot.Manifest{
			Cluster: n.cfg.Cluster, Partition: id, Range: h.spec.Range, Slots: n.slots, Epoch: h.spec.Epoch,
		})
		if err == nil && n.bucket != nil {
			err = n.bucket.Upload(ctx, dir, m)
		}
		b, _ := json.Marshal(struct {
			Dir      string            `json:"dir"`
			Manifest snapshot.Manifest `json:"manifest"`
		}{dir, m})
		n.cfg.Log.Info().Uint32("partition", id).Uint64("epoch", h.spec.Epoch).Str("dir", dir).Int64("keys", m.Keys).Int64("bytes", m.Bytes).AnErr("error", err).Msg("snapshot finished")
		n.ops.finish(op.Id, string(b), err)
	}()
	return op, nil
}
