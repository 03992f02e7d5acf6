package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/snapshot/snapshottest"
)

// syncBuffer is a log sink the test reads while the node writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dialNode connects a data client to n.
func dialNode(t *testing.T, n *Node) *testNode {
	t.Helper()
	conn, err := grpc.NewClient(n.DataAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testNode{Node: n, data: sluicev1.NewDataClient(conn), conn: conn}
}

// eventually polls cond until it holds, failing the test after a generous
// deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keyOf returns a key the node routes to partition id.
func keyOf(t *testing.T, n *testNode, id uint32) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		k := fmt.Sprint("key-", i)
		if _, p, ok := n.table.Load().Lookup([]byte(k)); ok && p.ID == id {
			return k
		}
	}
	t.Fatalf("no key routes to partition %d", id)
	return ""
}

// A snapshot whose upload hangs (a blob store that never answers a PUT) is
// cancelled when its partition is removed: the partition stops, and a
// partition added over its slots opens and serves (issue 14 §2: the
// manager used to wait for the upload, forever).
func TestRemovingAPartitionCancelsItsHungUpload(t *testing.T) {
	s3 := snapshottest.NewS3(t, snapshottest.HangWrites)
	// A timeout far beyond the test: only the release can end the upload.
	n := startNode(t, Config{Partitions: 4, SnapshotURL: s3.URL("b"), BlobTimeout: time.Hour})
	ctx := context.Background()
	key := keyOf(t, n, 4)
	if _, err := n.data.Upsert(ctx, upsert(key, "v")); err != nil {
		t.Fatal(err)
	}
	p4, _ := n.local(4)
	op, err := n.StartSnapshot(4, "hung")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s3.Hung:
	case <-time.After(60 * time.Second):
		t.Fatal("the snapshot's upload never reached the blob store")
	}

	rng := n.registry.View().Partitions[4].Range
	if err := n.registry.Update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		return []registry.Mutation{registry.DeletePartition(4)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed partition stops serving", func() bool { _, held := n.local(4); return !held && !p4.Serving() })
	eventually(t, "the hung snapshot ends, cancelled", func() bool {
		o, _ := n.Operation(op.Id)
		return o.State == "failed" && strings.Contains(o.Error, "cancelled")
	})
	if err := n.registry.Update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
		epoch, bump := v.NextEpoch()
		return []registry.Mutation{bump, registry.PutPartition(registry.Partition{ID: 5, Range: rng, Owner: "n1", Epoch: epoch})}, nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a partition added over the removed one's slots serves", n.Ready)
	got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)})
	if err != nil || string(got.Value) != "v" {
		t.Fatalf("the key written before the move: %v %v", got, err)
	}
}

// With a snapshot bucket that never answers at all, partitions with no
// local state still restore: the restore from the bucket stalls out after
// BlobTimeout, is logged, and the whole changelog is replayed instead.
func TestRestoreFallsBackToTheChangelogWhenTheBucketHangs(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	first := startNode(t, Config{Cluster: cluster, Partitions: 2})
	ctx := context.Background()
	var keys []string
	for i := 0; i < 50; i++ {
		keys = append(keys, fmt.Sprint("fallback-", i))
		if _, err := first.data.Upsert(ctx, upsert(keys[i], "v"+keys[i])); err != nil {
			t.Fatal(err)
		}
	}
	want := dump(t, first, keys)
	first.Close()

	s3 := snapshottest.NewS3(t, snapshottest.HangAll)
	var logs syncBuffer
	cfg := Config{Cluster: cluster, SnapshotURL: s3.URL("b"), BlobTimeout: time.Second}
	cfg.Brokers = kafkatest.Brokers(t)
	cfg.DataDir = t.TempDir()
	cfg.DataAddr, cfg.ControlAddr, cfg.ControlToken, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "test-token", "-"
	cfg.Log = zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), &logs)).Level(zerolog.WarnLevel)
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	eventually(t, "the node restores with a hung bucket", n.Ready)
	for _, id := range []string{`"partition":1,`, `"partition":2,`} {
		logged := false
		for _, line := range strings.Split(logs.String(), "\n") {
			logged = logged || strings.Contains(line, id) && strings.Contains(line, "restoring from the whole changelog instead") && strings.Contains(line, "made no progress")
		}
		if !logged {
			t.Fatalf("no fallback logged for %s: %s", id, logs.String())
		}
	}
	if s3.HungRequests() == 0 {
		t.Fatal("the bucket was never asked")
	}
	if got := dump(t, dialNode(t, n), keys); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored %d keys, want %d", len(got), len(want))
	}
}
