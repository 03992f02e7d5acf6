package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicedb/sluice/kv"
)

// Badger's raw rates on this disk, with sluice's options: the ceiling under
// a partition's store work.
//
//	go test -run '^$' -bench Badger -benchtime 5s -count 3 ./store

// BenchmarkBadgerBatchWrite applies batches of 100 keys of 100 bytes, one
// writer (a partition's goroutine applies serially).
func BenchmarkBadgerBatchWrite(b *testing.B) {
	s, err := OpenBadger(BadgerOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 100)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cs := make([]kv.Change, 100)
		for j := range cs {
			cs[j] = kv.Change{Key: fmt.Appendf(nil, "key-%06d", rng.IntN(100_000)), Value: value, Version: 1}
		}
		if err := s.Apply(kv.Write{Changes: cs, Offsets: map[int32]int64{0: int64(i)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkBadgerGet reads random keys of 100,000 with 32 goroutines.
func BenchmarkBadgerGet(b *testing.B) {
	s, err := OpenBadger(BadgerOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 100)
	for i := 0; i < 100_000; i += 1000 {
		cs := make([]kv.Change, 1000)
		for j := range cs {
			cs[j] = kv.Change{Key: fmt.Appendf(nil, "key-%06d", i+j), Value: value, Version: 1}
		}
		if err := s.Apply(kv.Write{Changes: cs}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			if r, err := s.Get(fmt.Appendf(nil, "key-%06d", rng.IntN(100_000))); err != nil || !r.Found {
				b.Errorf("get: %v %v", r.Found, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}
