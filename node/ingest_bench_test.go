package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/topics"
)

// BenchmarkIngest measures ingest from a pre-filled <c>.ingest (16 slots,
// 100-byte values) to applied state, beside the ceiling: franz-go's raw
// consume rate of the same topic on the same broker.
//
//	go run ./internal/kafkalocal/cmd/kafkalocal -- go test -run '^$' -bench Ingest -benchtime 1x -count 5 ./node
func BenchmarkIngest(b *testing.B) {
	const records = 500_000
	ctx := context.Background()
	brokers := kafkatest.Brokers(b)
	tp := topics.Names{Cluster: fmt.Sprint("bench-ingest-", time.Now().UnixNano())}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := topics.EnsureAll(ctx, cl, tp, keyspace.DefaultSlots, 1); err != nil {
		b.Fatal(err)
	}
	value := benchValue()
	var recs []*kgo.Record
	for i := 0; i < records; i++ {
		recs = append(recs, &kgo.Record{Topic: tp.Ingest(), Key: fmt.Appendf(nil, "key-%06d", i%50_000), Value: value})
	}
	// A last record per slot: once it is visible, its slot is applied.
	sentinels := make(map[int32][]byte)
	for i := 0; len(sentinels) < keyspace.DefaultSlots; i++ {
		k := fmt.Appendf(nil, "end-%d", i)
		if s := keyspace.Slot(k, keyspace.DefaultSlots); sentinels[s] == nil {
			sentinels[s] = k
			recs = append(recs, &kgo.Record{Topic: tp.Ingest(), Key: k, Value: []byte("end")})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	total := len(recs)

	b.Run("franz-go-consume", func(b *testing.B) {
		for range b.N {
			c, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(tp.Ingest()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for n := 0; n < total; {
				n += c.PollFetches(ctx).NumRecords()
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "records/s")
			c.Close()
		}
	})
	// What sluice must do per record besides consuming: produce it again (to
	// the changelog). A plain idempotent producer's rate bounds that part.
	b.Run("franz-go-produce", func(b *testing.B) {
		scratch := tp.Cluster + ".scratch"
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, keyspace.DefaultSlots, 1, nil, scratch); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			b.Fatal(err)
		}
		for range b.N {
			out := make([]*kgo.Record, len(recs))
			for i, r := range recs {
				out[i] = &kgo.Record{Topic: scratch, Key: r.Key, Value: r.Value}
			}
			start := time.Now()
			if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "records/s")
		}
	})
	b.Run("sluice", func(b *testing.B) {
		for range b.N {
			dir := b.TempDir()
			start := time.Now()
			n, err := Start(ctx, Config{Brokers: brokers, Cluster: tp.Cluster, DataDir: dir, DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "bench", HTTPAddr: "-", Log: benchLog()})
			if err != nil {
				b.Fatal(err)
			}
			for !n.Ready() {
				time.Sleep(2 * time.Millisecond)
			}
			ready := time.Now() // start-up done: restore, fencing, the read lease
			for _, key := range sentinels {
				for {
					_, owner, _ := n.table.Load().Lookup(key)
					p, ok := n.local(owner.ID)
					if !ok {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					r, err := p.Get(ctx, key)
					if err == nil && r.Found && string(r.Value.Data) == "end" {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "records/s")
			b.ReportMetric(float64(total)/time.Since(ready).Seconds(), "records/s-serving")
			n.Close()
			// The next run starts over from an empty store: a new cluster name
			// would need a new topic, so wipe the changelog's effect instead.
			b.StopTimer()
			resetChangelog(b, cl, tp)
			b.StartTimer()
		}
	})
}

// benchLog logs to stderr with SLUICE_BENCH_LOG=1, else nowhere.
func benchLog() zerolog.Logger {
	if os.Getenv("SLUICE_BENCH_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(os.Stderr).With().Timestamp().Logger()
}

// resetChangelog recreates the changelog topic, so the next node starts with
// nothing consumed.
func resetChangelog(b *testing.B, cl *kgo.Client, tp topics.Names) {
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if _, err := adm.DeleteTopics(ctx, tp.Changelog()); err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := topics.EnsureAll(ctx, cl, tp, keyspace.DefaultSlots, 1); err == nil {
			if d, err := adm.ListTopics(ctx, tp.Changelog()); err == nil && len(d[tp.Changelog()].Partitions) == keyspace.DefaultSlots {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
