package node

import (
	"context"
	"fmt"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// paced runs a control call again while the control plane's rate limit
// refuses it (a few calls a second).
func paced(t *testing.T, call func() error) {
	t.Helper()
	var err error
	eventually(t, "a control call within the rate limit", func() bool {
		err = call()
		if status.Code(err) == codes.ResourceExhausted {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// --wal disk and none: the data of removed partitions comes back when a
// partition over their slots is added, as with --wal kafka (there from the
// changelog, here from their final snapshots in the bucket): a merge of two
// partitions, then a split of the merged one, keep every value, and a value
// written between them.
func TestRemovedSlotsComeBackInAPartitionAddedOverThem(t *testing.T) {
	for _, wal := range []string{WALDisk, WALNone} {
		t.Run(wal, func(t *testing.T) {
			n := startNode(t, Config{NodeID: "n1", Partitions: 4, WAL: wal, SnapshotURL: "file://" + t.TempDir()})
			ctx := context.Background()
			ctl := controlOf(t, n.Node)
			slots := n.Slots()
			want := map[string]string{}
			for _, r := range []keyspace.Range{{From: 0, To: 4}, {From: 4, To: 8}} {
				for i := range 3 {
					k := string(keyInSlots(slots, r.From+int32(i), r.From+int32(i)+1, "k"))
					want[k] = "v-" + k
					if _, err := n.data.Upsert(ctx, upsert(k, want[k])); err != nil {
						t.Fatal(err)
					}
				}
			}
			replace := func(ids []uint32, ranges ...keyspace.Range) []uint32 {
				t.Helper()
				for _, id := range ids {
					paced(t, func() error {
						_, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(id)})
						return err
					})
				}
				var added []uint32
				for _, r := range ranges {
					paced(t, func() error {
						p, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: r.From, To: r.To}, Node: "n1"})
						if err == nil {
							added = append(added, p.Id)
						}
						return err
					})
				}
				for k, v := range want {
					eventually(t, fmt.Sprintf("%s = %q after %v were replaced by %v", k, v, ids, ranges), func() bool {
						got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(k)})
						return err == nil && string(got.Value) == v
					})
				}
				return added
			}
			merged := replace([]uint32{1, 2}, keyspace.Range{From: 0, To: 8})
			for k := range want {
				want[k] = "merged-" + k
				if _, err := n.data.Upsert(ctx, upsert(k, want[k])); err != nil {
					t.Fatal(err)
				}
				break
			}
			replace(merged, keyspace.Range{From: 0, To: 3}, keyspace.Range{From: 3, To: 8})
		})
	}
}

// --wal disk without a snapshot bucket cannot carry a partition's data
// anywhere: a removal or a move is refused, naming why and what to do,
// and the partition keeps serving its data.
func TestDiskModeWithoutABucketRefusesRemovalsAndMoves(t *testing.T) {
	n := startNode(t, Config{NodeID: "n1", Partitions: 4, WAL: WALDisk})
	ctx := context.Background()
	ctl := controlOf(t, n.Node)
	key := string(keyInSlots(n.Slots(), 0, 4, "k"))
	if _, err := n.data.Upsert(ctx, upsert(key, "v")); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"remove": func() error {
			_, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(1))})
			return err
		},
		"move": func() error {
			_, err := ctl.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"})
			return err
		},
	} {
		var err error
		eventually(t, name+" answered within the rate limit", func() bool {
			err = call()
			return status.Code(err) != codes.ResourceExhausted
		})
		if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "--wal disk without --snapshot-url") {
			t.Fatalf("%s of a --wal disk partition with no bucket: %v, want FailedPrecondition naming why", name, err)
		}
	}
	if _, ok := n.registry.View().Partitions[1]; !ok {
		t.Fatal("partition 1 was removed from the registry")
	}
	got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)})
	if err != nil || string(got.Value) != "v" {
		t.Fatalf("Get %s after the refusals: %v %v", key, got, err)
	}
}

// A partition of a --wal disk or none node has no standbys (they tail the
// Kafka changelog, which these modes never write): asking for one is refused,
// not accepted and left to fail on the standby's node.
func TestLocalLogModesRefuseStandbys(t *testing.T) {
	for _, wal := range []string{WALDisk, WALNone} {
		t.Run(wal, func(t *testing.T) {
			cfg := Config{Cluster: kafkatest.ClusterName(t), NodeID: "n1", Partitions: 2, WAL: wal, SnapshotURL: "file://" + t.TempDir()}
			if wal == WALNone {
				cfg.Store = StoreMemory
			}
			n := startNode(t, cfg)
			cfg.NodeID = "n2" // a node to hold the standby
			startNode(t, cfg)
			ctx := context.Background()
			ctl := controlOf(t, n.Node)
			var err error
			eventually(t, "remove answered within the rate limit", func() bool {
				_, err = ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(2))})
				return status.Code(err) != codes.ResourceExhausted
			})
			if err != nil {
				t.Fatalf("remove partition 2: %v", err)
			}
			free := n.registry.View().Partitions[1].Range.To
			eventually(t, "add answered within the rate limit", func() bool {
				_, err = ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: free, To: n.Slots()}, Node: "n1", Standbys: 1})
				return status.Code(err) != codes.ResourceExhausted
			})
			if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "no standbys") {
				t.Fatalf("a partition with a standby on a --wal %s node: %v, want FailedPrecondition naming why", wal, err)
			}
			if len(n.registry.View().Partitions) != 1 {
				t.Fatalf("the refused add changed the registry: %v", n.registry.View().Partitions)
			}
		})
	}
}
