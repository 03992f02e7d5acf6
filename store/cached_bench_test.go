package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// What the write-through cache buys: the durable store answers every read
// 200 µs late (slowStore: a network-attached managed disk), the cache is a
// local Badger. Both in the same run, 32 goroutines reading random keys of
// 100,000 (the cache warmed by one pass, as a partition's is by its writes):
//
//	go test -run '^$' -bench CachedGet -benchtime 3s -count 3 ./store
func BenchmarkCachedGet(b *testing.B) {
	durable, err := OpenBadger(BadgerOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer durable.Close()
	const keys = 100_000
	value := make([]byte, 100)
	for i := 0; i < keys; i += 1000 {
		cs := make([]kv.Change, 1000)
		for j := range cs {
			cs[j] = kv.Change{Key: fmt.Appendf(nil, "key-%06d", i+j), Value: value, Version: 1}
		}
		if err := durable.Apply(kv.Write{Changes: cs}); err != nil {
			b.Fatal(err)
		}
	}
	slow := slowStore{Store: durable, delay: 200 * time.Microsecond}
	cached, err := OpenCached(slow, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < keys; i += 1000 {
		batch := make([][]byte, 1000)
		for j := range batch {
			batch[j] = fmt.Appendf(nil, "key-%06d", i+j)
		}
		if _, err := cached.GetMany(batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		st   Store
	}{{"durable-200us", slow}, {"cached", cached}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
				for pb.Next() {
					if r, err := bc.st.Get(fmt.Appendf(nil, "key-%06d", rng.IntN(keys))); err != nil || !r.Found {
						b.Errorf("get: %v %v", r.Found, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
		})
	}
}
