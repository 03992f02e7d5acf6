package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
)

// BenchmarkRestore measures, for one partition of 1,000,000 keys with 100-byte
// values: replay of the changelog into an empty store, writing a snapshot,
// and a cold start from that snapshot (download, verify, load, replay the
// empty tail, serve).
//
//	go run ./internal/kafkalocal/cmd/kafkalocal -- go test -run '^$' -bench Restore -benchtime 1x -count 3 -timeout 30m ./node
func BenchmarkRestore(b *testing.B) {
	const keys = 1_000_000
	ctx := context.Background()
	brokers := kafkatest.Brokers(b)
	tp := topics.Names{Cluster: fmt.Sprint("bench-restore-", time.Now().UnixNano())}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(200_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := topics.EnsureAll(ctx, cl, tp, keyspace.DefaultSlots, 1); err != nil {
		b.Fatal(err)
	}
	value := benchValue()
	var bytes int64
	errs := make(chan error, 1)
	for i := 0; i < keys; i++ {
		k := fmt.Appendf(nil, "key-%07d", i)
		bytes += int64(len(k) + len(value))
		r := kv.Record{Kind: kv.KindChange, Slot: keyspace.Slot(k, keyspace.DefaultSlots), Epoch: 1, Change: kv.Change{Key: k, Value: value, Version: 1, Timestamp: uint64(i + 1)}}
		cl.Produce(ctx, changelog.Encode(tp.Changelog(), r), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	bucket := "file://" + b.TempDir()
	start := func(dir string) (*Node, time.Duration) {
		t0 := time.Now()
		n, err := Start(ctx, Config{Brokers: brokers, Cluster: tp.Cluster, DataDir: dir, Partitions: 1, SnapshotURL: bucket,
			DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "bench", HTTPAddr: "-", Log: benchLog()})
		if err != nil {
			b.Fatal(err)
		}
		for !n.Ready() {
			time.Sleep(5 * time.Millisecond)
		}
		return n, time.Since(t0)
	}

	// Replay: the first node has no snapshot to start from.
	n, took := start(b.TempDir())
	b.ReportMetric(keys/took.Seconds(), "replay-records/s")
	b.ReportMetric(float64(bytes)/1e6/took.Seconds(), "replay-MB/s")

	t0 := time.Now()
	op, err := n.StartSnapshot(1, "bench") // under DATA-DIR/snapshots
	if err != nil {
		b.Fatal(err)
	}
	for {
		o, _ := n.Operation(op.Id)
		if o.State == "failed" {
			b.Fatal(o.Error)
		}
		if o.State == "done" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(time.Since(t0).Seconds(), "snapshot-s")
	n.Close()

	// Cold start on a fresh disk: from the snapshot.
	dir := b.TempDir()
	n, took = start(dir)
	b.ReportMetric(took.Seconds(), "cold-start-s")
	b.ReportMetric(float64(bytes)/1e6/took.Seconds(), "cold-start-MB/s")
	n.Close()
}
