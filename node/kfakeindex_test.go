package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// A kill between kfake's segment write and its index write: the index lacks
// the entry of the last batch, one of a transaction in flight. kfake would
// read that batch as committed at its crash recovery; after the repair it
// aborts it, and only what was committed replays.
func TestRepairedIndexKeepsAnOpenTransactionAborted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka")
	tp := changelog.Topics{Cluster: "idx"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(1, tp.Changelog()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	for attempt := 0; ; attempt++ {
		g := &wal.Group{Records: []kv.Record{{Kind: kv.KindChange, Change: kv.Change{Key: []byte("committed"), Value: []byte("v"), Version: 1}}}}
		app, err := changelog.NewAppender(ctx, changelog.AppenderConfig{Client: opts, Topics: tp, TransactionalID: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = app.Append(ctx, g)
		app.Close()
		if errors.Is(err, wal.ErrNotCommitted) && attempt < 4 {
			continue // franz-go's first-transaction abort (changelog/commitwatch.go): again, with a new producer
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	w, err := kgo.NewClient(append([]kgo.Opt{kgo.TransactionalID("p1"), kgo.DefaultProduceTopic(tp.Changelog())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := w.ProduceSync(ctx, &kgo.Record{Key: []byte("in-flight"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	img := t.TempDir()
	if err := os.CopyFS(img, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c.Close()
	idx := filepath.Join(img, "partitions", tp.Changelog()+"-0", "0.idx")
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idx, b[:len(b)-kfakeIndexEntry], 0o644); err != nil { // killed before the index write
		t.Fatal(err)
	}

	repaired, err := repairKfakeIndexes(img)
	if err != nil || !slices.Equal(repaired, []string{idx}) {
		t.Fatalf("repaired %v (%v), want %s", repaired, err, idx)
	}
	if again, err := repairKfakeIndexes(img); err != nil || len(again) != 0 {
		t.Fatalf("a second repair rewrote %v (%v)", again, err)
	}
	c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(img))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var keys []string
	if _, err := changelog.Replay(ctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, tp.Changelog(), map[int32]int64{0: 0}, func(b changelog.Batch) error {
		for _, r := range b.Records {
			keys = append(keys, string(r.Key))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"committed"}) {
		t.Fatalf("replayed %v after the crash, want only [committed]", keys)
	}
}

// The embedded broker never compacts: kfake's compaction moves a slot's log
// start, and a partition replaying the slot from before it would refuse to
// start.
func TestEmbeddedBrokerNeverCompacts(t *testing.T) {
	n := startNode(t, Config{Brokers: []string{}, EmbeddedKafkaAddr: "127.0.0.1:0", Cluster: "embedded"})
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfgs, err := kadm.NewClient(cl).DescribeBrokerConfigs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Key == "log.cleaner.backoff.ms" {
				if c.Value == nil || *c.Value != embeddedCleanerBackoff {
					t.Fatalf("log.cleaner.backoff.ms = %v, want %s (never)", c.Value, embeddedCleanerBackoff)
				}
				return
			}
		}
	}
	t.Fatal("the embedded broker does not report log.cleaner.backoff.ms")
}
