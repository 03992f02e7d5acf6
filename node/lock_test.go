package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/registry"
)

// A second node on a data directory in use fails at once, naming the
// directory; once the first is gone the directory can be used again.
func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	cluster := kafkatest.ClusterName(t)
	first := startNode(t, Config{DataDir: dir, Cluster: cluster, Partitions: 1})
	_, err := Start(context.Background(), Config{DataDir: dir, Cluster: cluster, Brokers: kafkatest.Brokers(t), ControlToken: "t",
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-", Log: zerolog.Nop()})
	if !errors.Is(err, ErrDataDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second node on %s: %v, want ErrDataDirLocked naming the directory", dir, err)
	}
	first.Close()
	startNode(t, Config{DataDir: dir, Cluster: cluster, Partitions: 1})
}

// A node restarted on its own disk at the same epoch serves without the
// read-lease wait; at a new epoch (here, the same node's partition given a
// new epoch) it waits, and so does a restart before it ever served there.
func TestRestartSkipsTheLeaseWaitOnlyAtTheSameEpoch(t *testing.T) {
	dir := t.TempDir()
	cluster := kafkatest.ClusterName(t)
	n := startNode(t, Config{DataDir: dir, Cluster: cluster, Partitions: 2, Lease: 50 * time.Millisecond})
	waitServedRecorded(t, dir, 2)
	n.Close()

	// A lease of an hour: serving within the deadline proves the wait skipped.
	const long = time.Hour
	logs := &syncBuffer{}
	n2 := startLogged(t, Config{DataDir: dir, Cluster: cluster, Partitions: 2, Lease: long}, logs)
	deadline := time.Now().Add(60 * time.Second)
	for !n2.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("restarted node not serving within 60s: it waited its lease")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Partition 1 gets a new epoch, still on this node: it re-opens and waits.
	err := n2.Registry().Update(context.Background(), func(v *registry.View) ([]registry.Mutation, error) {
		p := v.Partitions[1]
		var bump registry.Mutation
		p.Epoch, bump = v.NextEpoch()
		return []registry.Mutation{bump, registry.PutPartition(p)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitsTheLease(t, n2, logs, 1)
	n2.Close()
	// Restarted before it served at that epoch: it waits again.
	logs = &syncBuffer{}
	waitsTheLease(t, startLogged(t, Config{DataDir: dir, Cluster: cluster, Partitions: 2, Lease: long}, logs), logs, 1)
}

// startLogged starts a node against the test broker, logging into logs.
func startLogged(t *testing.T, cfg Config, logs *syncBuffer) *Node {
	t.Helper()
	cfg.Brokers, cfg.ControlToken = kafkatest.Brokers(t), "test-token" // the token of the cluster's other nodes (openNode): the registry key derives from it
	cfg.DataAddr, cfg.ControlAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "-"
	cfg.Log = zerolog.New(logs)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitServedRecorded waits until the node's partitions' directories record
// that they served.
func waitServedRecorded(t *testing.T, dir string, partitions int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		served := 0
		files, _ := filepath.Glob(filepath.Join(dir, "partitions", "p*", "partition.json"))
		for _, f := range files {
			var meta dirMeta
			if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &meta) == nil && meta.Served {
				served++
			}
		}
		if served == partitions {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d partitions recorded that they served", served, partitions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitsTheLease waits until partition id has restored at its current epoch
// (its log says so), and checks that it then does not serve: it is waiting
// out its read lease.
func waitsTheLease(t *testing.T, n *Node, logs *syncBuffer, id uint32) {
	t.Helper()
	epoch := n.Registry().View().Partitions[id].Epoch
	prefix := fmt.Sprintf(`"partition":%d,"epoch":%d,`, id, epoch)
	restored := func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, prefix) && strings.Contains(l, `"message":"restored"`) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !restored() {
		if time.Now().After(deadline) {
			t.Fatalf("partition %d never restored at epoch %d:\n%s", id, epoch, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // well within the hour's lease
	if p, ok := n.local(id); !ok || p.Serving() || p.Epoch() != epoch {
		t.Fatalf("partition %d serves at epoch %d before its lease is over", id, epoch)
	}
	for _, p := range n.LocalStatus() {
		if p.Id == id && !strings.HasPrefix(p.State, "restoring") {
			t.Fatalf("partition %d is %q while it waits its lease", id, p.State)
		}
	}
}
