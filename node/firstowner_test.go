package node

import (
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/registry"
)

// Issue 28.12: a brand-new cluster's first partitions serve without waiting
// a lease (here an hour: serving within the deadline proves the wait was
// skipped), with Kafka's changelog and with a local log (whose ownership
// lease is what a new owner waits). Before, a new --wal disk cluster
// answered nothing for its first 10 s. A later process of the same node id
// on another disk (not a restart the incarnations can vouch for) finds the
// same partitions at epoch 1 and still waits: the first process may be alive
// and answering reads behind a network cut.
func TestABrandNewClusterServesWithoutTheLeaseWait(t *testing.T) {
	const long = time.Hour
	for _, wal := range []string{WALKafka, WALDisk} {
		t.Run(wal, func(t *testing.T) {
			cluster := kafkatest.ClusterName(t)
			cfg := Config{DataDir: t.TempDir(), Cluster: cluster, Partitions: 2, WAL: wal, Lease: long, OwnershipLease: long}
			first := startLogged(t, cfg, &syncBuffer{})
			waitReady(t, first, "a brand-new cluster's node with a lease of an hour")
			for _, p := range first.Registry().View().Partitions {
				if p.Epoch != 1 {
					t.Fatalf("partition %d of a new cluster is at epoch %d", p.ID, p.Epoch)
				}
			}
			if wal != WALKafka {
				return // a local log's partitions stay on the first disk
			}
			first.Close()
			logs := &syncBuffer{}
			cfg.DataDir = t.TempDir()
			second := startLogged(t, cfg, logs)
			waitsTheLease(t, second, logs, 1)
		})
	}
}

// The rule over the registry: only the process that created epoch 1, still
// its node id's newest, over slots no other producer ever held.
func TestFirstOwnerRule(t *testing.T) {
	r := keyspace.Range{From: 0, To: 8}
	spec := registry.Partition{ID: 1, Range: r, Owner: "n1", Epoch: 1}
	inc := registry.Incarnation{Node: "n1", N: 1}
	brandNew := func() *registry.View {
		return &registry.View{
			MaxEpoch:     1,
			Incarnations: map[string]registry.Incarnation{"n1": inc},
			Partitions:   map[uint32]registry.Partition{1: spec, 2: {ID: 2, Range: keyspace.Range{From: 8, To: 16}, Owner: "n1", Epoch: 1}},
			Writers: map[string]registry.Writer{
				"c.p1": {ID: "c.p1", Ranges: []registry.WriterRange{{Range: r, Epoch: 1}}},
				"c.p2": {ID: "c.p2", Ranges: []registry.WriterRange{{Range: keyspace.Range{From: 8, To: 16}, Epoch: 1}}},
			},
		}
	}
	if !firstOwner(brandNew(), spec, "c.p1", inc, 0) {
		t.Fatal("a brand-new cluster's partition, opened by the process that created it, waits")
	}
	for _, tc := range []struct {
		name     string
		change   func(v *registry.View, spec *registry.Partition, inc *registry.Incarnation, joinedAt *uint64)
		whyWaits string
	}{
		{"a later epoch", func(v *registry.View, s *registry.Partition, _ *registry.Incarnation, _ *uint64) {
			s.Epoch = 2
		}, "an earlier owner may answer within its lease"},
		{"a later process of the node id", func(_ *registry.View, _ *registry.Partition, i *registry.Incarnation, j *uint64) {
			i.N, *j = 2, 1
		}, "the process that created it may be alive behind a cut"},
		{"a newer process registered since", func(v *registry.View, _ *registry.Partition, _ *registry.Incarnation, _ *uint64) {
			v.Incarnations["n1"] = registry.Incarnation{Node: "n1", N: 2}
		}, "this process is superseded"},
		{"another node's partition", func(_ *registry.View, s *registry.Partition, _ *registry.Incarnation, _ *uint64) {
			s.Owner = "n2"
		}, "the incarnation is not the owner's"},
		{"a removed partition held some of its slots", func(v *registry.View, _ *registry.Partition, _ *registry.Incarnation, _ *uint64) {
			v.Writers["c.p9"] = registry.Writer{ID: "c.p9", Ranges: []registry.WriterRange{{Range: keyspace.Range{From: 6, To: 10}, Epoch: 3}}}
		}, "the removed partition's owner may answer within its lease"},
		{"its producer once held another range over its slots", func(v *registry.View, _ *registry.Partition, _ *registry.Incarnation, _ *uint64) {
			w := v.Writers["c.p1"]
			w.Ranges = append(w.Ranges, registry.WriterRange{Range: keyspace.Range{From: 0, To: 4}, Epoch: 1})
			v.Writers["c.p1"] = w
		}, "it served other slots' reads under another range"},
	} {
		v, s, i, joined := brandNew(), spec, inc, uint64(0)
		tc.change(v, &s, &i, &joined)
		if firstOwner(v, s, "c.p1", i, joined) {
			t.Errorf("%s: skips the lease wait, but %s", tc.name, tc.whyWaits)
		}
	}
	// Another producer over other slots only: still brand-new.
	v := brandNew()
	v.Writers["c.p3"] = registry.Writer{ID: "c.p3", Ranges: []registry.WriterRange{{Range: keyspace.Range{From: 8, To: 12}, Epoch: 4}}}
	if !firstOwner(v, spec, "c.p1", inc, 0) {
		t.Fatal("a producer of other slots made a brand-new partition wait")
	}
}
