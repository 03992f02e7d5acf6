package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// A standby that starts from an empty disk (its node replaced) serves
// EVENTUAL reads only once it has caught up with the changelog: before, it
// answers UNAVAILABLE with NotApplied (a client reads from the owner), never
// "absent" for a key the partition has long held.
func TestAFreshStandbyNeverAnswersAbsentForAnOldKey(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	n1 := startNode(t, Config{NodeID: "n1", Cluster: cluster, Partitions: 2})
	n2 := startNode(t, Config{NodeID: "n2", Cluster: cluster})
	ctx := context.Background()
	cc, err := grpc.NewClient(n1.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctl := sluicev1.NewControlClient(cc)
	await(t, "remove partition 2", func() bool {
		_, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(2))})
		return err == nil
	})
	var id uint32
	await(t, "add [8,16) on n1 with a standby", func() bool {
		p, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 8, To: 16}, Node: "n1", Standbys: 1})
		id = p.GetId()
		return err == nil
	})
	await(t, "the partition serves on n1", func() bool { _, ok := n1.local(id); return ok && n1.Ready() })

	// Enough of a changelog that a fresh standby takes a while to read it.
	var keys []string
	for i := 0; len(keys) < 30000; i++ {
		if k := fmt.Sprint("old-", i); keyspace.Slot([]byte(k), n1.Slots()) >= 8 {
			keys = append(keys, k)
		}
	}
	for i := 0; i < len(keys); i += 1000 {
		req := &sluicev1.UpsertRequest{}
		for _, k := range keys[i:min(i+1000, len(keys))] {
			req.Entries = append(req.Entries, &sluicev1.Entry{Key: []byte(k), Value: make([]byte, 100)})
		}
		if _, err := n1.data.Upsert(ctx, req); err != nil {
			t.Fatal(err)
		}
	}

	n2.Close() // the machine is replaced: same node, empty disk
	n2 = startNode(t, Config{NodeID: "n2", Cluster: cluster})
	scan := func() (int, error) { // the Scan of a few old keys, at the standby
		st, err := n2.data.Scan(ctx, &sluicev1.ScanRequest{Prefix: []byte("old-"), Limit: 10,
			Consistency: sluicev1.Consistency_EVENTUAL, Partitions: []uint32{id}})
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			r, err := st.Recv()
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			n += len(r.Entries)
		}
	}
	caughtUp := func() bool { sb, _ := n2.standby(id); return sb != nil && sb.CaughtUp() }
	var unavailable, served int
	for served < 200 {
		got, err := n2.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(keys[0]), Consistency: sluicev1.Consistency_EVENTUAL})
		switch {
		case err == nil && got.Found:
			served++
		case err == nil:
			t.Fatalf("the standby answered absent for a key written before it started (caught up: %v; %d unavailable answers before)", caughtUp(), unavailable)
		case status.Code(err) == codes.Unavailable && hasNotApplied(status.Convert(err)):
			unavailable++
		default:
			t.Fatalf("EVENTUAL Get from the standby: %v", err)
		}
		// A Scan answers as the Get does (found from outside: it answered
		// FAILED_PRECONDITION "not served here" with a BadNode).
		switch n, err := scan(); {
		case err == nil && n == 0:
			t.Fatalf("the standby's Scan found none of the %d keys written before it started (caught up: %v)", len(keys), caughtUp())
		case err != nil && (status.Code(err) != codes.Unavailable || !hasNotApplied(status.Convert(err))):
			t.Fatalf("EVENTUAL Scan from the standby (caught up: %v): %v; want UNAVAILABLE with NotApplied, as its Get answers", caughtUp(), err)
		}
	}
	t.Logf("%d UNAVAILABLE answers before the standby served", unavailable)
}
