package server_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/topics"
)

// Under --wal disk (and none) nothing writes the changelog a watch reads:
// a watch is refused, naming the mode, instead of never delivering.
func TestWatchRefusedWithoutKafkaWAL(t *testing.T) {
	cfg := node.Config{Brokers: kafkatest.Brokers(t), Cluster: kafkatest.ClusterName(t), DataDir: t.TempDir(),
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "test-token", HTTPAddr: "-", WAL: node.WALDisk,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	nd, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	cl, err := client.New(nd.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cl.Watch(ctx, []byte("k"), client.WatchOptions{}, func(client.WatchBatch) error {
		return fmt.Errorf("a watch under --wal disk was accepted")
	})
	if s := status.Convert(err); s.Code() != codes.FailedPrecondition || !strings.Contains(s.Message(), "--wal disk") {
		t.Fatalf("watch under --wal disk: %v, want FAILED_PRECONDITION naming --wal disk", err)
	}
}

// Compaction does not move the changelog's start: it drops a removal's
// tombstone once delete.retention.ms has passed. A token older than that
// is refused (OUT_OF_RANGE, telling the client to scan again), not served
// with removals missing.
func TestWatchRefusesTokensOlderThanDeleteRetention(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	tp := topics.Names{Cluster: cluster}
	if _, err := topics.EnsureAll(ctx, cl, tp, 16, 1); err != nil {
		t.Fatal(err)
	}
	const retention = 2 * time.Second
	ms := strconv.FormatInt(retention.Milliseconds(), 10)
	altered, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "delete.retention.ms", Value: &ms}}, tp.Changelog())
	if err == nil {
		_, err = altered.On(tp.Changelog(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The broker applies the change a moment later: the node reads it at start.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rc, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, tp.Changelog())
		if err == nil {
			var c kadm.ResourceConfig
			if c, err = rc.On(tp.Changelog(), nil); err == nil && slices.ContainsFunc(c.Configs, func(c kadm.Config) bool { return c.Key == "delete.retention.ms" && c.MaybeValue() == ms }) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete.retention.ms not %s in 60s (%v)", ms, err)
		}
	}
	n := startNodeOf(t, cluster) // it finds the topics as altered
	res, err := n.cl.Upsert(ctx, client.Entry{Key: []byte("r-1"), Value: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	old := &client.Session{Offsets: map[int32]int64{res[0].Slot: res[0].Offset}}
	// A token within the retention is served.
	if got := watchUntil(t, n, "r-", old, 1, nil); strings.Join(got.changes, " ") != "r-1=one@1" {
		t.Fatalf("watch from a fresh token saw %v", got.changes)
	}
	time.Sleep(retention + 500*time.Millisecond) // the record is now older than the retention
	if _, err := n.cl.Remove(ctx, []byte("r-1")); err != nil {
		t.Fatal(err)
	}
	st, err := n.data.Watch(ctx, &sluicev1.WatchRequest{Prefix: []byte("r-"), From: wireSession(old)})
	if err == nil {
		_, err = st.Recv()
	}
	if s := status.Convert(err); s.Code() != codes.OutOfRange || !strings.Contains(s.Message(), "delete.retention.ms") || !strings.Contains(s.Message(), "Scan") {
		t.Fatalf("watch from a token older than delete.retention.ms: %v, want OUT_OF_RANGE naming it and telling to scan", err)
	}
}
