package node

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkaread"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/topics"
)

// A key removed while a store was offline, or after a snapshot was taken,
// stays removed once compaction has dropped its tombstone: a store out of
// sync for longer than the changelog's delete.retention.ms is not replayed
// onto, nor is such a snapshot loaded (issue 13 §5). The changelog is
// created with a five-second tombstone retention and aggressive compaction
// so that Kafka's log cleaner drops the tombstone within the test.
func TestRemovedKeyStaysRemovedAfterCompaction(t *testing.T) {
	ctx := context.Background()
	cluster := kafkatest.ClusterName(t)
	topic := topics.Names{Cluster: cluster}.Changelog()
	admin, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	_, err = kadm.NewClient(admin).CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"max.message.bytes":         kadm.StringPtr("4259840"),
		"delete.retention.ms":       kadm.StringPtr("5000"),
		"segment.ms":                kadm.StringPtr("200"),
		"segment.bytes":             kadm.StringPtr("1048576"), // Kafka 4.1's least
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"min.compaction.lag.ms":     kadm.StringPtr("0"),
	}, topic)
	if err != nil {
		t.Fatal(err)
	}
	bucket := "file://" + t.TempDir()
	var logs syncBuffer
	start := func(dir string) *testNode {
		t.Helper()
		cfg := Config{Cluster: cluster, Partitions: 1, SnapshotURL: bucket, Brokers: kafkatest.Brokers(t), DataDir: dir,
			DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "test-token", HTTPAddr: "-",
			Log: zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), &logs)).Level(zerolog.WarnLevel)}
		n, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		eventually(t, "the node serves", n.Ready)
		return dialNode(t, n)
	}
	get := func(n *testNode, key string) (string, bool) {
		t.Helper()
		r, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Value), r.Found
	}

	// The first node writes the key, snapshots it to the bucket and stops:
	// its store and the snapshot both hold the key.
	dirA := t.TempDir()
	a := start(dirA)
	if _, err := a.data.Upsert(ctx, upsert("doomed", "v1", "other", "o")); err != nil {
		t.Fatal(err)
	}
	op, err := a.StartSnapshot(1, "before-the-removal")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the snapshot is uploaded", func() bool { o, _ := a.Operation(op.Id); return o.State != "running" })
	if o, _ := a.Operation(op.Id); o.State != "done" {
		t.Fatalf("snapshot: %s %s", o.State, o.Error)
	}
	a.Close()

	// Another store removes the key, and writes on until the log cleaner
	// has dropped every record of it, its tombstone too.
	b := start(t.TempDir())
	if _, err := b.data.Remove(ctx, &sluicev1.RemoveRequest{Key: []byte("doomed")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Minute)
	for i := 0; holdsKey(t, topic, "doomed"); i++ {
		if time.Now().After(deadline) {
			t.Fatal("the log cleaner did not drop the tombstone within 4 minutes")
		}
		for range 10 { // appends roll segments (segment.ms) and make the log dirty
			if _, err := b.data.Upsert(ctx, upsert("filler", strings.Repeat("f", i%7))); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if v, found := get(b, "other"); !found || v != "o" {
		t.Fatalf("other = %q %v", v, found)
	}
	b.Close()

	// The first store, out of sync for longer than the retention: emptied
	// and restored afresh, not replayed onto.
	c := start(dirA)
	if v, found := get(c, "doomed"); found {
		t.Fatalf("a key removed while the store was offline came back: %q", v)
	}
	if v, found := get(c, "other"); !found || v != "o" {
		t.Fatalf("other = %q %v after the store was restored afresh", v, found)
	}
	if !strings.Contains(logs.String(), "longer than the changelog's delete.retention.ms (5s)") {
		t.Fatalf("no warning names the store's age and the retention: %s", logs.String())
	}
	c.Close()

	// An empty store: the snapshot, older than the retention, is refused.
	d := start(t.TempDir())
	if v, found := get(d, "doomed"); found {
		t.Fatalf("a key removed after the snapshot came back from it: %q", v)
	}
	if !strings.Contains(logs.String(), "longer than the changelog's delete.retention.ms of 5s (5000 ms)") {
		t.Fatalf("no warning names the snapshot's age and the retention: %s", logs.String())
	}
}

// holdsKey reports whether slot 0 of topic still holds a record of key.
func holdsKey(t *testing.T, topic, key string) bool {
	t.Helper()
	found := false
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := kafkaread.Replay(ctx, []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}, topic, map[int32]int64{0: 0}, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			found = found || string(r.Key) == key
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
