package node

import (
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/kafkatest"
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
