package node

import (
	"context"
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A planned --wal disk move hands the partition over through a final
// snapshot taken after the old owner stopped serving: the new owner serves
// at once, without waiting out the ownership lease that guards against an
// owner that never stopped (a pause, a cut). Here n2's lease is 10 minutes:
// before, the partition stayed "restoring" on n2 for all of it, and writers
// whose retries ran out failed mid-move (TestPlannedMovesHandOffThroughTheBucket).
func TestAFinalHandOffServesWithoutTheLeaseWait(t *testing.T) {
	cluster, bucket := kafkatest.ClusterName(t), "file://"+t.TempDir()
	n1 := startNode(t, Config{Cluster: cluster, NodeID: "n1", Partitions: 2, WAL: WALDisk, SnapshotURL: bucket, OwnershipLease: time.Second})
	n2 := startNode(t, Config{Cluster: cluster, NodeID: "n2", Partitions: 2, WAL: WALDisk, SnapshotURL: bucket, OwnershipLease: 10 * time.Minute})
	ctx := context.Background()
	p1 := n1.registry.View().Partitions[1]
	key := string(keyInSlots(n1.Slots(), p1.Range.From, p1.Range.To, "k"))
	if _, err := n1.data.Upsert(ctx, upsert(key, "before")); err != nil {
		t.Fatal(err)
	}
	ctl := controlOf(t, n1.Node)
	eventually(t, "the move accepted", func() bool {
		_, err := ctl.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"})
		return err == nil
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		got, err := n2.data.Get(callCtx, &sluicev1.GetRequest{Key: []byte(key)})
		cancel()
		if err == nil {
			if string(got.Value) != "before" {
				t.Fatalf("n2 serves %s = %q, want the value written on n1", key, got.Value)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n2 did not serve the partition handed over by a final snapshot within 2 minutes (its lease is 10): %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := n2.data.Upsert(ctx, upsert(key, "after")); err != nil {
		t.Fatalf("a write on the new owner: %v", err)
	}
}
