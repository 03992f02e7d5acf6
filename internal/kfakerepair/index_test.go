package kfakerepair

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
	"github.com/sluicedb/sluice/wal"
)

// A kill between kfake's segment write and its index write: the index lacks
// the entry of the last batch, one of a transaction in flight. kfake would
// read that batch as committed at its crash recovery; after the repair it
// aborts it, and only what was committed replays.
func TestRepairedIndexKeepsAnOpenTransactionAborted(t *testing.T) {
	tp := topics.Names{Cluster: "idx"}
	c, dir, ctx := startKfake(t, tp.Changelog())
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
			continue // franz-go's first-transaction abort (kafkatxn/commitwatch.go): again, with a new producer
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
	img := crashImage(t, dir)
	w.Close()
	c.Close()
	idx := filepath.Join(img, "partitions", tp.Changelog()+"-0", "0.idx")
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idx, b[:len(b)-indexEntry], 0o644); err != nil { // killed before the index write
		t.Fatal(err)
	}

	repaired, err := repairIndexes(img)
	if err != nil || !slices.Equal(repaired, []string{idx}) {
		t.Fatalf("repaired %v (%v), want %s", repaired, err, idx)
	}
	if again, err := repairIndexes(img); err != nil || len(again) != 0 {
		t.Fatalf("a second repair rewrote %v (%v)", again, err)
	}
	c = restartKfake(t, img)
	defer c.Close()
	var keys []string
	if _, err := kafkaread.Replay(ctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, tp.Changelog(), map[int32]int64{0: 0}, func(b kafkaread.Step) error {
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
