package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
	"github.com/sluicedb/sluice/topics"
)

// Fencing follows slots, not partition ids (issue 13 §1). Partition 1 holds
// slots 0-4 on n1 and is kept running past its removal, as a snapshot still
// reading its store keeps it (the release waits for the snapshot). Then
// `partitions rm 1` and `partitions add` over the same slots, as one
// partition on n2 or split over n2 and n1: the new partitions fence p1's
// producer before they replay, so
//   - every ingest record of slots 0-3 is applied exactly once (p1 used to
//     apply each one a second time, interleaved with the new owner's);
//   - the old partition answers no read and takes no write once the new
//     owners serve (it used to answer the value they had replaced);
//   - re-syncing after it was fenced, it finds itself removed from the
//     registry and stops for good, without fencing the new owners back.
func TestRemoveAndAddOverTheSameSlotsFencesTheOldOwner(t *testing.T) {
	for _, tc := range []struct {
		name string
		adds []add
	}{
		{"same range", []add{{keyspace.Range{From: 0, To: 4}, "n2"}}},
		{"split range", []add{{keyspace.Range{From: 0, To: 2}, "n2"}, {keyspace.Range{From: 2, To: 4}, "n1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { testRemoveAndAdd(t, tc.adds) })
	}
}

type add struct {
	r    keyspace.Range
	node string
}

func testRemoveAndAdd(t *testing.T, adds []add) {
	cluster := kafkatest.ClusterName(t)
	n1 := startNode(t, Config{Cluster: cluster, NodeID: "n1", Partitions: 4})
	n2 := startNode(t, Config{Cluster: cluster, NodeID: "n2"})
	ctx := context.Background()
	ctl := controlOf(t, n1.Node)
	tp := topics.Names{Cluster: cluster}
	slots := n1.Slots()
	if r := n1.registry.View().Partitions[1].Range; r != (keyspace.Range{From: 0, To: 4}) {
		t.Fatalf("partition 1 holds %s, want [0,4)", r)
	}
	key := string(keyInSlots(slots, 0, 2, "k"))
	if _, err := n1.data.Upsert(ctx, upsert(key, "old")); err != nil {
		t.Fatal(err)
	}

	// Keep p1 running past its removal: a snapshot reading its store holds
	// the release (held.busy) while the partition still serves and ingests.
	n1.mu.Lock()
	h := n1.parts[1]
	h.busy.Add(1)
	n1.mu.Unlock()
	p1 := h.p
	var unhold sync.Once
	t.Cleanup(func() { unhold.Do(h.busy.Done) })

	if _, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(1))}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 releases partition 1 (and waits for the snapshot)", func() bool { _, held := n1.local(1); return !held })
	if !p1.Serving() {
		t.Fatal("the old partition stopped: the test no longer keeps it running past its removal")
	}
	nodes := map[string]*testNode{"n1": n1, "n2": n2}
	for _, a := range adds {
		added, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: a.r.From, To: a.r.To}, Node: a.node})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("partition %d serves on %s", added.Id, a.node), func() bool {
			p, ok := nodes[a.node].local(added.Id)
			return ok && p.Serving()
		})
	}
	eventually(t, "both nodes route the slots to the new partitions", func() bool {
		for _, n := range nodes {
			if _, p, ok := n.table.Load().Lookup([]byte(key)); !ok || p.ID == 1 {
				return false
			}
		}
		return true
	})

	// Ingest records to slots 0-3, and a gRPC write through the new owner.
	ingested := produceIngest(t, tp, slots, 40)
	if _, err := n2.data.Upsert(ctx, upsert(key, "new")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every ingest record is applied", func() bool {
		for k, v := range ingested {
			owner := n2
			if _, p, _ := n2.table.Load().Lookup([]byte(k)); p.Node == "n1" {
				owner = n1
			}
			got, err := owner.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(k)})
			if err != nil || string(got.Value) != v {
				return false
			}
		}
		return true
	})

	// The old partition neither answers a read nor takes a write.
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if r, err := p1.Get(callCtx, []byte(key)); err == nil {
		t.Errorf("the removed partition answered a read of %s: %q, after the new owner wrote %q", key, r.Value.Data, "new")
	}
	if _, err := p1.Upsert(callCtx, []kv.Entry{{Key: []byte(key), Value: []byte("zombie")}}); err == nil {
		t.Errorf("the removed partition took a write of %s", key)
	}
	cancel()

	// The changelog applies each ingest record of the slots exactly once.
	applied := ingestApplications(t, tp, slots)
	var twice [][2]int64
	for id, n := range applied {
		if n != 1 {
			twice = append(twice, id)
		}
	}
	if len(twice) > 0 {
		t.Errorf("%d of %d ingest records applied more than once, e.g. slot %d offset %d", len(twice), len(applied), twice[0][0], twice[0][1])
	}
	if len(applied) != len(ingested) {
		t.Errorf("%d ingest records applied, want %d", len(applied), len(ingested))
	}
	eventually(t, "the old partition, re-syncing, finds itself deposed", func() bool { return p1.Status().Deposed() })
	// n1's data plane sends the key to its new owner.
	if _, err := n1.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("n1 asked for %s: %v, want FailedPrecondition (BadNode)", key, err)
	}
	// The new owners were not fenced back: they take writes and keep "new".
	if _, err := n2.data.Upsert(ctx, upsert(string(keyInSlots(slots, 0, 2, "after")), "ok")); err != nil {
		t.Errorf("a write to the new owner after the old one re-synced: %v", err)
	}
	if got, err := n2.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); err != nil || string(got.Value) != "new" {
		t.Errorf("%s through the new owner: %v %v, want %q", key, got, err, "new")
	}

	unhold.Do(h.busy.Done)
}

func ptr[T any](v T) *T { return &v }

// controlOf is a control-plane client of n.
func controlOf(t *testing.T, n *Node) sluicev1.ControlClient {
	t.Helper()
	cc, err := grpc.NewClient(n.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return sluicev1.NewControlClient(cc)
}

// keyInSlots is a key, starting with prefix, whose slot is in [from, to).
func keyInSlots(slots, from, to int32, prefix string) []byte {
	for i := 0; ; i++ {
		k := fmt.Append(nil, prefix, "-", i)
		if s := keyspace.Slot(k, slots); s >= from && s < to {
			return k
		}
	}
}

// produceIngest writes n records, one key each, to the ingest topic's slots
// 0-3 and returns key → value.
func produceIngest(t *testing.T, tp topics.Names, slots int32, n int) map[string]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.DefaultProduceTopic(tp.Ingest()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]string{}
	var recs []*kgo.Record
	for i := 0; len(recs) < n; i++ {
		k := fmt.Append(nil, "ingest-", i)
		s := keyspace.Slot(k, slots)
		if s >= 4 {
			continue
		}
		v := fmt.Sprint("v", i)
		out[string(k)] = v
		recs = append(recs, &kgo.Record{Key: k, Value: []byte(v), Partition: s})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ingestApplications counts, from the whole changelog, how many changes
// applied each ingest record (slot, offset).
func ingestApplications(t *testing.T, tp topics.Names, slots int32) map[[2]int64]int {
	t.Helper()
	from := map[int32]int64{}
	for s := int32(0); s < slots; s++ {
		from[s] = 0
	}
	applied := map[[2]int64]int{}
	_, err := kafkaread.Replay(context.Background(), []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}, tp.Changelog(), from, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			rec, err := changelog.Decode(r)
			if err != nil {
				return err
			}
			if rec.Kind == kv.KindChange && rec.Ingest != nil {
				applied[[2]int64{int64(rec.Ingest.Slot), rec.Ingest.Offset}]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return applied
}

// A partition removed from the registry is deposed at its ownership checks
// (partition/restore.go asks twice: before fencing and after its own fence;
// partition's TestOwnershipIsCheckedAgainAfterItsOwnFence covers the second),
// and its writer record stays for the next owner of its slots to fence.
func TestRemovedPartitionIsDeposedAfterItsOwnFence(t *testing.T) {
	n := startNode(t, Config{Partitions: 2})
	ctx := context.Background()
	spec := n.registry.View().Partitions[1]
	if err := n.owns(spec)(ctx); err != nil {
		t.Fatalf("partition 1 before its removal: %v", err)
	}
	if _, err := controlOf(t, n.Node).RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(1))}); err != nil {
		t.Fatal(err)
	}
	if err := n.owns(spec)(ctx); !errors.Is(err, partition.ErrDeposed) {
		t.Fatalf("the first check of a removed partition: %v, want ErrDeposed", err)
	}
	// Its writer record stays: whoever takes the slots next fences it.
	if got := n.registry.View().Fences(spec.Range, n.registry.View().MaxEpoch+1, "other"); len(got) != 1 || got[0] != n.TransactionalID(1) {
		t.Fatalf("a new owner of %s would fence %v, want [%s]", spec.Range, got, n.TransactionalID(1))
	}
}
