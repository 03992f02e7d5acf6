package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The benchmarks run against the test broker (real Kafka) through gRPC with 32
// concurrent clients and report p50/p99 latency beside throughput:
//
//	go run ./internal/kafkalocal/cmd/kafkalocal -- go test -run '^$' -bench 'UpsertBatch|Get' -benchtime 5s -count 5 ./node

const benchClients = 32

// latencies collects per-operation latencies and reports their percentiles.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	at := func(q float64) float64 {
		return float64(l.all[int(q*float64(len(l.all)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// parallel runs op b.N times over benchClients goroutines, timing each call.
func parallel(b *testing.B, op func(rng *rand.Rand) error) *latencies {
	var lat latencies
	b.SetParallelism((benchClients + 1) / 2) // × GOMAXPROCS (2 here) = 32 clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if err := op(rng); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		lat.add(mine)
	})
	b.StopTimer()
	return &lat
}

var (
	benchOnce sync.Once
	bench     *testNode
)

// benchNode is one node for every run of every benchmark, warmed up with
// 200,000 keys: the first transactions on a fresh topic wait for metadata and
// the broker's JIT is cold, neither of which is the steady state measured.
func benchNode(b *testing.B) *testNode {
	benchOnce.Do(func() {
		// It outlives each run of b, so nothing of it may be tied to b.
		dir, err := os.MkdirTemp("", "sluice-bench")
		if err != nil {
			b.Fatal(err)
		}
		parts, _ := strconv.Atoi(os.Getenv("SLUICE_BENCH_PARTITIONS")) // 0: the default
		bench = openNode(b, Config{Brokers: kafkatest.Brokers(b), Cluster: "bench-" + fmt.Sprint(time.Now().UnixNano()), Partitions: parts,
			DataDir: dir, Log: zerolog.Nop()})
		value := benchValue()
		for i := 0; i < 2000; i++ {
			req := &sluicev1.UpsertRequest{}
			for j := 0; j < 100; j++ {
				req.Entries = append(req.Entries, &sluicev1.Entry{Key: fmt.Appendf(nil, "key-%06d", (i*100+j)%100_000), Value: value})
			}
			if _, err := bench.data.Upsert(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	return bench
}

func benchValue() []byte {
	v := make([]byte, 100)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// BenchmarkUpsertBatch: durable batched upserts, 100 keys of 100 bytes per
// batch, over 100,000 distinct keys.
func BenchmarkUpsertBatch(b *testing.B) {
	n := benchNode(b)
	value := benchValue()
	ctx := context.Background()
	lat := parallel(b, func(rng *rand.Rand) error {
		req := &sluicev1.UpsertRequest{Entries: make([]*sluicev1.Entry, 100)}
		for i := range req.Entries {
			req.Entries[i] = &sluicev1.Entry{Key: fmt.Appendf(nil, "key-%06d", rng.IntN(100_000)), Value: value}
		}
		_, err := n.data.Upsert(ctx, req)
		return err
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
	lat.report(b)
}

// BenchmarkGet: single-key gets of 100,000 stored keys at each consistency
// level, side by side.
func BenchmarkGet(b *testing.B) {
	n := benchNode(b) // holds key-000000 … key-099999
	ctx := context.Background()
	const keys = 100_000
	for _, level := range []sluicev1.Consistency{sluicev1.Consistency_LINEARIZABLE, sluicev1.Consistency_SESSION, sluicev1.Consistency_EVENTUAL} {
		b.Run(strings.ToLower(level.String()), func(b *testing.B) {
			lat := parallel(b, func(rng *rand.Rand) error {
				req := &sluicev1.GetRequest{Key: fmt.Appendf(nil, "key-%06d", rng.IntN(keys)), Consistency: level}
				if level == sluicev1.Consistency_SESSION {
					req.Session = &sluicev1.Session{Offsets: map[int32]int64{}} // a reader with no writes of its own
				}
				resp, err := n.data.Get(ctx, req)
				if err == nil && !resp.Found {
					err = fmt.Errorf("a stored key is missing")
				}
				return err
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
			lat.report(b)
		})
	}
}
