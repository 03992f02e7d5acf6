package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// notReadyCalls is a valid request for every data and control RPC: each
// would reach the routing table (or the registry) if it were served. A new
// RPC without an entry here fails the test.
var notReadyCalls = map[string]proto.Message{
	"/sluice.v1.Data/Upsert":              &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte("k"), Value: []byte("v")}}},
	"/sluice.v1.Data/Get":                 &sluicev1.GetRequest{Key: []byte("k")},
	"/sluice.v1.Data/Remove":              &sluicev1.RemoveRequest{Key: []byte("k")},
	"/sluice.v1.Data/Increment":           &sluicev1.IncrementRequest{Key: []byte("n"), Delta: 1},
	"/sluice.v1.Data/GetRoutes":           &sluicev1.GetRoutesRequest{},
	"/sluice.v1.Data/GetMany":             &sluicev1.GetManyRequest{Keys: [][]byte{[]byte("k")}},
	"/sluice.v1.Data/Scan":                &sluicev1.ScanRequest{},
	"/sluice.v1.Data/Watch":               &sluicev1.WatchRequest{},
	"/sluice.v1.Control/AddPartition":     &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 0, To: 1}},
	"/sluice.v1.Control/RemovePartition":  &sluicev1.RemovePartitionRequest{Id: proto.Uint32(999)},
	"/sluice.v1.Control/MovePartition":    &sluicev1.MovePartitionRequest{Id: 999, Node: "nowhere"},
	"/sluice.v1.Control/ListPartitions":   &sluicev1.ListPartitionsRequest{},
	"/sluice.v1.Control/Snapshot":         &sluicev1.SnapshotRequest{Partition: 1, Path: "snap"},
	"/sluice.v1.Control/GetOperation":     &sluicev1.GetOperationRequest{Id: "op-1"},
	"/sluice.v1.Control/NodeStatus":       &sluicev1.NodeStatusRequest{},
	"/sluice.v1.Control/PinPartition":     &sluicev1.PinPartitionRequest{Id: 999, Pinned: true},
	"/sluice.v1.Control/SetAutoPlacement": &sluicev1.SetAutoPlacementRequest{On: true},
}

// Issue 22.1: a call that reaches a node whose routing table is not loaded
// yet (once, every call that came while a restarted node started: the
// first one killed it with a nil dereference) is answered UNAVAILABLE with
// NotApplied, and the node goes on serving once the table is there.
func TestEveryCallBeforeTheRoutingTableIsUnavailable(t *testing.T) {
	n := startNode(t, Config{ControlRate: 1000}) // every control call in a burst
	ctl, err := grpc.NewClient(n.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	table := n.table.Load()
	n.table.Store(nil) // as between the ports' opening and the first reconcile

	for _, svc := range []struct {
		desc *grpc.ServiceDesc
		conn *grpc.ClientConn
	}{{&sluicev1.Data_ServiceDesc, n.conn}, {&sluicev1.Control_ServiceDesc, ctl}} {
		call := func(method string, stream *grpc.StreamDesc) {
			full := "/" + svc.desc.ServiceName + "/" + method
			req, ok := notReadyCalls[full]
			if !ok {
				t.Errorf("%s: no request in notReadyCalls: add one", full)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if stream == nil {
				err = svc.conn.Invoke(ctx, full, req, new(emptypb.Empty))
			} else {
				err = callStream(ctx, svc.conn, stream, full, req)
			}
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "no routing table") || !hasNotApplied(st) {
				t.Errorf("%s before the routing table: %v (details %v), want UNAVAILABLE naming the missing routing table, with NotApplied", full, err, st.Details())
			}
		}
		for _, m := range svc.desc.Methods {
			call(m.MethodName, nil)
		}
		for i := range svc.desc.Streams {
			call(svc.desc.Streams[i].StreamName, &svc.desc.Streams[i])
		}
	}

	// The node is alive and serves once its table is back.
	n.table.Store(table)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.data.Upsert(ctx, upsert("k", "v")); err != nil {
		t.Fatalf("after the table is loaded: %v", err)
	}
	if routes, err := n.data.GetRoutes(ctx, &sluicev1.GetRoutesRequest{}); err != nil || len(routes.Routes) == 0 {
		t.Fatalf("after the table is loaded: GetRoutes = %v, %v", routes, err)
	}
}

// callStream sends req on a new stream of method and returns how it ended.
func callStream(ctx context.Context, conn *grpc.ClientConn, desc *grpc.StreamDesc, method string, req proto.Message) error {
	s, err := conn.NewStream(ctx, desc, method)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil {
		return s.RecvMsg(new(emptypb.Empty)) // a refused stream's status comes from Recv
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		if err := s.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
	}
}

func hasNotApplied(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*sluicev1.NotApplied); ok {
			return true
		}
	}
	return false
}
