package changelog

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// BenchmarkAppend measures one partition's group commit: transactions of
// SLUICE_BENCH_GROUP (default 270) change records of 100-byte values over 4
// slots, one after the other, as a partition's flusher appends them.
func BenchmarkAppend(b *testing.B) {
	size := 270
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_GROUP")); err == nil {
		size = v
	}
	tp, opts, _ := setup(b, 4)
	ctx := context.Background()
	if d, err := time.ParseDuration(os.Getenv("SLUICE_BENCH_TXN_BACKOFF")); err == nil {
		opts = append(opts, kgo.ConcurrentTransactionsBackoff(d))
	}
	app, err := NewAppender(ctx, AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(0)})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	value := make([]byte, 100)
	group := func(n int) *wal.Group {
		recs := make([]kv.Record, size)
		for i := range recs {
			recs[i] = kv.Record{Kind: kv.KindChange, Slot: int32(i % 4), Epoch: 1, Change: kv.Change{Key: []byte(fmt.Sprintf("key-%d-%d", n, i)), Value: value, Version: 1, Timestamp: 1}}
		}
		return &wal.Group{Records: recs}
	}
	for range 20 { // warm up: metadata of a fresh topic
		if _, err := app.Append(ctx, group(-1)); err != nil {
			b.Fatal(err)
		}
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		recs := group(n)
		start := time.Now()
		if _, err := app.Append(ctx, recs); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
}
