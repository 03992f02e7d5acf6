package kafkaread_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
	"github.com/sluicedb/sluice/wal"
)

// The tests write with the changelog's appender, the writer whose logs a
// read must get through, and read with kafkaread.

func TestMain(m *testing.M) { kafkatest.Main(m) }

// setup creates a cluster's topics, slots partitions each, on the test broker.
func setup(t testing.TB, slots int32) (topics.Names, []kgo.Opt, *kadm.Client) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	tp := topics.Names{Cluster: kafkatest.ClusterName(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := topics.EnsureAll(ctx, cl, tp, slots, 1)
	if err != nil || got != slots {
		t.Fatalf("EnsureAll = %d, %v", got, err)
	}
	return tp, opts, adm
}

func change(i int, slot int32) kv.Record {
	return kv.Record{Kind: kv.KindChange, Slot: slot, Epoch: 3,
		Change: kv.Change{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i)), Version: uint64(i + 1), Timestamp: uint64(1000 + i)}}
}

// group appends recs in one group.
func group(t testing.TB, app *changelog.Appender, recs ...kv.Record) {
	t.Helper()
	if _, err := app.Append(context.Background(), &wal.Group{Records: recs}); err != nil {
		t.Fatal(err)
	}
}
