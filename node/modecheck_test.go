package node

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The tester's D3: n1 runs --wal disk without a bucket, n2 --wal disk with
// one. Sent to n2, a move of n1's partition and a removal of another were
// accepted (n2 checked only its own mode): n2 started the partition empty
// and acknowledged writes were lost. Whichever node answers, the refusal
// follows the partition's owner, names it and says why; the registry is
// unchanged and the data still served.
func TestMovesAreRefusedOnTheOwnersMode(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	n1 := startNode(t, Config{Cluster: cluster, NodeID: "n1", Partitions: 2, WAL: WALDisk})
	n2 := startNode(t, Config{Cluster: cluster, NodeID: "n2", Partitions: 2, WAL: WALDisk, SnapshotURL: "file://" + t.TempDir()})
	ctx := context.Background()
	key := string(keyInSlots(n1.Slots(), n1.registry.View().Partitions[1].Range.From, n1.registry.View().Partitions[1].Range.To, "k"))
	if _, err := n1.data.Upsert(ctx, upsert(key, "v")); err != nil {
		t.Fatal(err)
	}
	ctl := controlOf(t, n2.Node)
	for name, call := range map[string]func() error{
		"move of partition 1 to n2": func() error {
			_, err := ctl.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"})
			return err
		},
		"removal of partition 2": func() error {
			_, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(2))})
			return err
		},
	} {
		var err error
		eventually(t, name+" answered within the rate limit", func() bool {
			err = call()
			return status.Code(err) != codes.ResourceExhausted
		})
		st := status.Convert(err)
		if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "node n1 runs --wal disk without --snapshot-url") {
			t.Errorf("%s, sent to n2 (which has a bucket): %v, want FailedPrecondition naming the owner n1 and why", name, err)
		}
	}
	v := n2.registry.View()
	if p := v.Partitions[1]; p.Owner != "n1" {
		t.Errorf("partition 1 is now %+v, want it still on n1", p)
	}
	if _, ok := v.Partitions[2]; !ok {
		t.Error("partition 2 was removed from the registry")
	}
	got, err := n1.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)})
	if err != nil || string(got.Value) != "v" {
		t.Fatalf("Get %s after the refusals: %v %v", key, got, err)
	}
}

// A node whose --wal differs from one another node of its cluster
// announced is refused at start, naming that node and its mode: no
// partition's data could move between them.
func TestMixedModesAreRefusedAtStart(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	n1 := startNode(t, Config{Cluster: cluster, NodeID: "n1", Partitions: 2, WAL: WALDisk, SnapshotURL: "file://" + t.TempDir()})
	if w := n1.registry.View().Nodes["n1"]; w.WAL != WALDisk || !w.Bucket {
		t.Fatalf("n1's record %+v, want its mode announced (disk, with a bucket)", w)
	}
	cfg := Config{Cluster: cluster, NodeID: "n2", WAL: WALKafka, Brokers: kafkatest.Brokers(t), DataDir: t.TempDir(),
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-", ControlToken: "test-token"}
	n2, err := Start(context.Background(), cfg)
	if err == nil {
		n2.Close()
		t.Fatal("a --wal kafka node started beside a --wal disk one")
	}
	if !strings.Contains(err.Error(), "node n1") || !strings.Contains(err.Error(), "--wal disk") {
		t.Fatalf("start of a --wal kafka node beside a --wal disk one: %v, want an error naming n1 and its mode", err)
	}
}
