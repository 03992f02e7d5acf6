package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
)

// The loop's own cost, without Kafka or a disk: a partition over the
// in-memory fake log and a memory store, 32 concurrent callers.
//
//	go test -run '^$' -bench 'PartitionUpsertBatch|PartitionGet' -count 5 ./partition

func benchPartition(b *testing.B) *Partition {
	b.Helper()
	p := Start(testConfig(newFakeLog(), store.NewMemory()))
	b.Cleanup(func() { p.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for !p.Serving() {
		if time.Now().After(deadline) {
			b.Fatal("the partition never served")
		}
		time.Sleep(time.Millisecond)
	}
	value := make([]byte, 100)
	for i := 0; i < 100; i++ { // 10,000 keys
		es := make([]kv.Entry, 100)
		for j := range es {
			es[j] = kv.Entry{Key: fmt.Appendf(nil, "key-%05d", i*100+j), Value: value}
		}
		if _, err := p.Upsert(context.Background(), es); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkPartitionUpsertBatch: batches of 100 keys of 100 bytes over
// 10,000 keys; each op is one batch.
func BenchmarkPartitionUpsertBatch(b *testing.B) {
	p := benchPartition(b)
	value := make([]byte, 100)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			es := make([]kv.Entry, 100)
			for j := range es {
				es[j] = kv.Entry{Key: fmt.Appendf(nil, "key-%05d", rng.IntN(10_000)), Value: value}
			}
			if _, err := p.Upsert(context.Background(), es); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkPartitionGet: linearizable single-key gets of stored keys.
func BenchmarkPartitionGet(b *testing.B) {
	p := benchPartition(b)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			r, err := p.Get(context.Background(), fmt.Appendf(nil, "key-%05d", rng.IntN(10_000)))
			if err == nil && !r.Found {
				err = fmt.Errorf("a stored key is missing")
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// BenchmarkReadCache: the read cache alone, fuller than its budget
// (values.go). Each op is one upsert batch of 100 keys: the loop fills the
// request from the cache and records the batch as written. Keys are drawn
// Zipf-skewed (s=1.1) from 262,144, four times what the 16 MiB budget
// holds: "hit%" is the share of keys the cache answered, the rest being
// store reads.
func BenchmarkReadCache(b *testing.B) {
	const space, batch = 1 << 18, 100
	rc := NewReadCache(16 << 20)
	defer rc.Close()
	c := newValues(rc)
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, space-1)
	keys := make([][]byte, space)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%07d", i)
	}
	changes := make([]kv.Change, batch)
	req := &core.Request{Op: core.OpUpsert, Entries: make([]kv.Entry, batch)}
	var hits, asked int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range req.Entries {
			k := keys[zipf.Uint64()]
			req.Entries[j] = kv.Entry{Key: k}
			changes[j] = kv.Change{Key: k, Value: k, Version: uint64(i + 1)}
		}
		req.Reads = make([]core.Read, batch)
		c.Fill(req, 0)
		for _, r := range req.Reads {
			if r.OK {
				hits++
			}
		}
		asked += batch
		c.Writing()
		c.Wrote(changes, nil)
	}
	b.ReportMetric(100*float64(hits)/float64(asked), "hit%")
}
