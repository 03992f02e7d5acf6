package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicedb/sluice/kv"
)

// Ceilings of the read side's store work, with sluice's options:
//
//	go test -run '^$' -bench 'BadgerGetMany|BadgerScan' -benchtime 3s -count 3 ./store

// BenchmarkBadgerGetMany reads 100 random keys of 100,000 per read
// transaction with 32 goroutines: the ceiling under an EVENTUAL GetMany.
func BenchmarkBadgerGetMany(b *testing.B) {
	getMany(b, filled(b, 100_000))
}

// getMany reads 100 random keys of "key-000000" to "key-099999" from s per
// GetMany, with 32 goroutines, and reports keys/s.
func getMany(b *testing.B, s *Badger) {
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		keys := make([][]byte, 100)
		for pb.Next() {
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%06d", rng.IntN(100_000))
			}
			rs, err := s.GetMany(keys)
			if err != nil || len(rs) != len(keys) {
				b.Errorf("get many: %d reads, %v", len(rs), err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkBadgerScan reads 1,000 keys from a random one, one read
// transaction each, with 32 goroutines: the ceiling under a Scan's part.
func BenchmarkBadgerScan(b *testing.B) {
	s := filled(b, 100_000)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			n := 0
			err := s.Scan(fmt.Appendf(nil, "key-%06d", rng.IntN(99_000)), nil, func([]byte, kv.Value) bool { n++; return n < 1000 })
			if err != nil || n != 1000 {
				b.Errorf("scan: %d keys, %v", n, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkBadgerGetManyRewritten is BenchmarkBadgerGetMany on a store
// shaped as `sluice bench` leaves a partition's: 1,000,000 writes of random
// keys of 100,000, in batches of 100, so keys have versions in both
// memtables and several tables, which every lookup searches.
func BenchmarkBadgerGetManyRewritten(b *testing.B) {
	s := filled(b, 0)
	value := make([]byte, 100)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		cs := make([]kv.Change, 100)
		for j := range cs {
			cs[j] = kv.Change{Key: fmt.Appendf(nil, "key-%06d", rng.IntN(100_000)), Value: value, Version: uint64(i + 1)}
		}
		if err := s.Apply(kv.Write{Changes: cs}); err != nil {
			b.Fatal(err)
		}
	}
	getMany(b, s)
}

// filled is a Badger store of n keys "key-%06d" with 100-byte values.
func filled(b *testing.B, n int) *Badger {
	s, err := OpenBadger(BadgerOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	value := make([]byte, 100)
	for i := 0; i < n; i += 1000 {
		cs := make([]kv.Change, 1000)
		for j := range cs {
			cs[j] = kv.Change{Key: fmt.Appendf(nil, "key-%06d", i+j), Value: value, Version: 1}
		}
		if err := s.Apply(kv.Write{Changes: cs}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
