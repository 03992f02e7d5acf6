package server

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
)

// Cluster is what the control plane needs from its node.
type Cluster interface {
	Registry() *registry.Registry
	Slots() int32
	// LocalStatus describes the partitions this node holds.
	LocalStatus() []*sluicev1.PartitionInfo
	// LocalStandbys describes the standbys this node keeps.
	LocalStandbys() []*sluicev1.StandbyInfo
	// StartSnapshot starts a snapshot of a partition this node holds; an
	// error wraps ErrNotHeld, snapshot.ErrOutsideRoot, or is the node's own.
	StartSnapshot(partition uint32, path string) (*sluicev1.Operation, error)
	// Operation reports an operation this node runs.
	Operation(id string) (*sluicev1.Operation, bool)
	// TransactionalID is the transactional id of partition's changelog
	// producer: the registry records which slots it was given.
	TransactionalID(partition uint32) string
}

// Control is the control-plane gRPC service. It only writes desired state
// into the registry; nodes reconcile with it. Whether a partition's data can
// follow a move, a removal or a standby is the registry's rule
// (registry/modes.go), decided on the modes its owner and the nodes named
// announced, whichever node answers the call.
type Control struct {
	sluicev1.UnimplementedControlServer
	// Node is this node's id.
	Node    string
	Cluster Cluster
	// Token is sent to peers when asking for their NodeStatus.
	Token string
	// PeerCreds secure calls to peers' control planes. Default: plaintext.
	PeerCreds credentials.TransportCredentials
}

func toRange(r *sluicev1.SlotRange) keyspace.Range {
	if r == nil {
		return keyspace.Range{}
	}
	return keyspace.Range{From: r.From, To: r.To}
}

func fromRange(r keyspace.Range) *sluicev1.SlotRange {
	return &sluicev1.SlotRange{From: r.From, To: r.To}
}

func info(p registry.Partition) *sluicev1.PartitionInfo {
	pi := &sluicev1.PartitionInfo{Id: p.ID, Range: fromRange(p.Range), Owner: p.Owner, Epoch: p.Epoch, State: "unknown", Standbys: p.Standbys,
		Pinned: p.Pinned, Placed: p.Placed}
	if p.Moving != nil {
		pi.MovingTo = p.Moving.To
	}
	return pi
}

// update runs fn through the registry's serialised writer. An error of fn's
// (a rule of placement.go) keeps its code; the registry failing to write is
// Unavailable.
func (c *Control) update(ctx context.Context, fn func(v *registry.View) ([]registry.Mutation, error)) error {
	var refused error
	err := c.Cluster.Registry().Update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		muts, err := fn(v)
		refused = err
		return muts, err
	})
	switch {
	case err == nil:
		return nil
	case refused != nil:
		return toStatus(refused)
	}
	return status.Error(codes.Unavailable, err.Error())
}

func (c *Control) AddPartition(ctx context.Context, req *sluicev1.AddPartitionRequest) (*sluicev1.PartitionInfo, error) {
	r := toRange(req.Range)
	if err := r.Validate(c.Cluster.Slots()); err != nil {
		return nil, invalid("%v", err)
	}
	var added registry.Partition
	err := c.update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		muts, p, err := v.Add(registry.AddRequest{ID: req.Id, Range: r, Owner: req.Node, Standbys: int(req.Standbys)}, c.Cluster.TransactionalID)
		added = p
		return muts, err
	})
	if err != nil {
		return nil, err
	}
	return info(added), nil
}

func (c *Control) RemovePartition(ctx context.Context, req *sluicev1.RemovePartitionRequest) (*sluicev1.PartitionInfo, error) {
	if (req.Id == nil) == (req.Range == nil) {
		return nil, invalid("name the partition by id or by range, not both or neither")
	}
	var removed registry.Partition
	err := c.update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		p, err := v.Find(req.Id, toRange(req.Range))
		removed = p
		if err != nil {
			return nil, err
		}
		return v.Remove(p)
	})
	if err != nil {
		return nil, err
	}
	return info(removed), nil
}

func (c *Control) MovePartition(ctx context.Context, req *sluicev1.MovePartitionRequest) (*sluicev1.PartitionInfo, error) {
	var moved registry.Partition
	err := c.update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		muts, p, err := v.Move(req.Id, req.Node)
		moved = p
		return muts, err
	})
	if err != nil {
		return nil, err
	}
	return info(moved), nil
}

// PinPartition pins or unpins a partition (registry/rebalance.go).
func (c *Control) PinPartition(ctx context.Context, req *sluicev1.PinPartitionRequest) (*sluicev1.PartitionInfo, error) {
	var pinned registry.Partition
	err := c.update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		muts, p, err := v.Pin(req.Id, req.Pinned)
		pinned = p
		return muts, err
	})
	if err != nil {
		return nil, err
	}
	return info(pinned), nil
}

// SetAutoPlacement pauses or resumes automatic placement.
func (c *Control) SetAutoPlacement(ctx context.Context, req *sluicev1.SetAutoPlacementRequest) (*sluicev1.AutoPlacement, error) {
	err := c.update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		return v.SetAuto(req.On), nil
	})
	if err != nil {
		return nil, err
	}
	return &sluicev1.AutoPlacement{On: req.On}, nil
}

func (c *Control) ListPartitions(ctx context.Context, _ *sluicev1.ListPartitionsRequest) (*sluicev1.ListPartitionsResponse, error) {
	reg := c.Cluster.Registry()
	if err := reg.CatchUp(ctx); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	v := reg.View()
	resp := &sluicev1.ListPartitionsResponse{Slots: c.Cluster.Slots(), AutoPlacement: !v.Paused}
	for _, n := range v.Nodes {
		resp.Nodes = append(resp.Nodes, &sluicev1.NodeInfo{Id: n.ID, DataAddr: n.DataAddr, ControlAddr: n.ControlAddr})
	}
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].Id < resp.Nodes[j].Id })
	// Each owner describes its own partitions.
	seen := map[string]map[uint32]*sluicev1.PartitionInfo{}
	for _, p := range v.Partitions {
		if _, ok := seen[p.Owner]; !ok {
			seen[p.Owner] = c.statusOf(ctx, v, p.Owner)
		}
		pi := info(p)
		if st, ok := seen[p.Owner][p.ID]; ok && st.Epoch == p.Epoch {
			pi.State, pi.Keys, pi.ChangelogLag, pi.Mode = st.State, st.Keys, st.ChangelogLag, st.Mode
		}
		resp.Partitions = append(resp.Partitions, pi)
	}
	sort.Slice(resp.Partitions, func(i, j int) bool { return resp.Partitions[i].Range.From < resp.Partitions[j].Range.From })
	return resp, nil
}

// statusOf asks node for its partitions' state; nil when it does not answer.
// This node answers for itself without a call: whatever address the registry
// names for it, the token never leaves the process to learn its own state.
func (c *Control) statusOf(ctx context.Context, v *registry.View, node string) map[uint32]*sluicev1.PartitionInfo {
	var list []*sluicev1.PartitionInfo
	if node == c.Node {
		list = c.Cluster.LocalStatus()
	} else if n, ok := v.Nodes[node]; ok {
		list = c.peerStatus(ctx, n)
	}
	out := make(map[uint32]*sluicev1.PartitionInfo, len(list))
	for _, p := range list {
		out[p.Id] = p
	}
	return out
}

func (c *Control) peerStatus(ctx context.Context, n registry.Node) []*sluicev1.PartitionInfo {
	var resp *sluicev1.NodeStatusResponse
	err := c.peer(ctx, n.ID, func(ctx context.Context, pc sluicev1.ControlClient) (err error) {
		resp, err = pc.NodeStatus(ctx, &sluicev1.NodeStatusRequest{})
		return err
	})
	if err != nil {
		return nil
	}
	return resp.Partitions
}

// forwardedTo is the metadata a control call forwarded to a peer carries:
// the id of the node it was meant for. See checkForwarded.
const forwardedTo = "sluice-forwarded-to"

// peer calls another node's control plane with this cluster's token (every
// node shares one). The call names the node it is meant for, so that an
// address reaching the wrong node is refused there rather than served or
// forwarded again. The address is the one the registry holds, and only
// records sealed under the cluster key are in it (registry/seal.go): one a
// client of the broker forged is not. A call is never forwarded to this node
// itself: every handler serves its own node's part locally.
func (c *Control) peer(ctx context.Context, node string, call func(context.Context, sluicev1.ControlClient) error) error {
	if node == c.Node {
		return status.Errorf(codes.Internal, "control plane: a call for this node (%s) was about to be forwarded to itself; refused", node)
	}
	v := c.Cluster.Registry().View()
	n, ok := v.Nodes[node]
	if !ok {
		return status.Errorf(codes.Unavailable, "node %q has not announced itself", node)
	}
	if self, ok := v.Nodes[c.Node]; ok && node != c.Node && n.ControlAddr == self.ControlAddr {
		return status.Errorf(codes.FailedPrecondition, "node %s advertises control address %s, which is this node's (%s) own: "+
			"give every node its own reachable address with --advertise-control-addr", node, n.ControlAddr, c.Node)
	}
	creds := c.PeerCreds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(Target(n.ControlAddr), grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(BearerToken(c.Token)))
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return call(metadata.AppendToOutgoingContext(ctx, forwardedTo, node), sluicev1.NewControlClient(cc))
}

// checkForwarded refuses a call forwarded by a peer for another node: the
// address the registry holds for that node reaches this one (say two hosts
// both advertising 127.0.0.1:7401). Serving it would answer for the wrong
// node, and forwarding it again could go round in circles. It reports
// whether the call was forwarded, so the handler does not forward it again.
func (c *Control) checkForwarded(ctx context.Context) (bool, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	to := md.Get(forwardedTo)
	if len(to) == 0 {
		return false, nil
	}
	if len(to) != 1 || to[0] != c.Node {
		return true, status.Errorf(codes.FailedPrecondition, "this is node %s, but a peer forwarded a call meant for node %v here: "+
			"that node's advertised control address reaches this one; set --advertise-control-addr", c.Node, to)
	}
	return true, nil
}

func (c *Control) Snapshot(ctx context.Context, req *sluicev1.SnapshotRequest) (*sluicev1.Operation, error) {
	if req.Path == "" {
		return nil, invalid("a snapshot needs a path (a folder on the owner's disk)")
	}
	p, ok := c.Cluster.Registry().View().Partitions[req.Partition]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown partition %d", req.Partition)
	}
	forwarded, err := c.checkForwarded(ctx)
	if err != nil {
		return nil, err
	}
	if p.Owner == c.Node {
		op, err := c.Cluster.StartSnapshot(req.Partition, req.Path)
		return op, toStatus(err)
	}
	if forwarded {
		return nil, notApplied(codes.Unavailable, fmt.Sprintf("partition %d moved to node %s while the call was forwarded; retry", req.Partition, p.Owner))
	}
	var op *sluicev1.Operation
	err = c.peer(ctx, p.Owner, func(ctx context.Context, pc sluicev1.ControlClient) (err error) {
		op, err = pc.Snapshot(ctx, req)
		return err
	})
	return op, err
}

func (c *Control) GetOperation(ctx context.Context, req *sluicev1.GetOperationRequest) (*sluicev1.Operation, error) {
	node, _, ok := strings.Cut(req.Id, "/")
	if !ok {
		return nil, invalid("operation id %q is not NODE/N", req.Id)
	}
	forwarded, err := c.checkForwarded(ctx)
	if err != nil {
		return nil, err
	}
	if node == c.Node {
		op, ok := c.Cluster.Operation(req.Id)
		if !ok {
			return nil, status.Errorf(codes.NotFound, "no operation %q on node %s (operations live in the node's memory)", req.Id, node)
		}
		return op, nil
	}
	if forwarded {
		return nil, status.Errorf(codes.FailedPrecondition, "operation %q belongs to node %s, not to this node %s", req.Id, node, c.Node)
	}
	var op *sluicev1.Operation
	err = c.peer(ctx, node, func(ctx context.Context, pc sluicev1.ControlClient) (err error) {
		op, err = pc.GetOperation(ctx, req)
		return err
	})
	return op, err
}

func (c *Control) NodeStatus(ctx context.Context, _ *sluicev1.NodeStatusRequest) (*sluicev1.NodeStatusResponse, error) {
	if _, err := c.checkForwarded(ctx); err != nil {
		return nil, err
	}
	return &sluicev1.NodeStatusResponse{Partitions: c.Cluster.LocalStatus(), Standbys: c.Cluster.LocalStandbys()}, nil
}

// PeerStandbys asks node for the standbys it keeps (the failover decider
// asks a rebalance's target whether its standby caught up).
func (c *Control) PeerStandbys(ctx context.Context, node string) ([]*sluicev1.StandbyInfo, error) {
	if node == c.Node {
		return c.Cluster.LocalStandbys(), nil
	}
	var resp *sluicev1.NodeStatusResponse
	err := c.peer(ctx, node, func(ctx context.Context, pc sluicev1.ControlClient) (err error) {
		resp, err = pc.NodeStatus(ctx, &sluicev1.NodeStatusRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Standbys, nil
}

// String keeps the token out of any %v of the service.
func (c *Control) String() string { return fmt.Sprintf("Control{token: %d bytes}", len(c.Token)) }
