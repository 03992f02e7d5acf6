package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// GetManyWithin reads in order and stops before the first value that does
// not fit: missing and removed keys take nothing, and one budget is shared
// by every read given it. Badger, memory, and the cached store (both with
// its cache cold and warm) keep the same contract.
func TestGetManyWithinStopsBeforeTheValueThatDoesNotFit(t *testing.T) {
	sized := func(n int) []byte { return bytes.Repeat([]byte("v"), n) }
	fill := func(t *testing.T, s Store) {
		if err := s.Apply(kv.Batch{Changes: []kv.Change{
			{Key: []byte("a"), Value: sized(100), Version: 1},
			{Key: []byte("c"), Value: sized(100), Version: 1},
			{Key: []byte("d"), Value: sized(300), Version: 1},
			{Key: []byte("e"), Value: sized(10), Version: 1},
			{Key: []byte("r"), Remove: true, Version: 2, Timestamp: uint64(time.Now().UnixMilli()) << 16},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("r"), []byte("c"), []byte("d"), []byte("e")}
	check := func(t *testing.T, s Store) {
		b := NewReadBudget(250)
		reads, err := s.GetManyWithin(keys, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(reads) != 4 || !reads[0].Found || len(reads[0].Value.Data) != 100 || reads[1].Found || reads[2].Found || reads[2].Value.Version != 2 || len(reads[3].Value.Data) != 100 {
			t.Fatalf("within 250 bytes: %d reads, want a, b, r and c (d's 300 bytes do not fit)", len(reads))
		}
		if b.Left() != 50 {
			t.Fatalf("%d bytes left, want 50", b.Left())
		}
		if reads, err := s.GetManyWithin(keys[5:], b); err != nil || len(reads) != 1 || len(reads[0].Value.Data) != 10 {
			t.Fatalf("e within what is left: %+v %v", reads, err)
		}
		if reads, err := s.GetManyWithin(keys, nil); err != nil || len(reads) != len(keys) || len(reads[4].Value.Data) != 300 {
			t.Fatalf("no budget: %d reads, %v", len(reads), err)
		}
	}
	eachStore(t, func(t *testing.T, s Store, _ func() Store) {
		fill(t, s)
		check(t, s)
	})
	t.Run("cached", func(t *testing.T) {
		durable, err := OpenBadger(BadgerOptions(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		defer durable.Close()
		fill(t, durable)
		c := openCached(t, durable, t.TempDir())
		defer c.Close()
		check(t, c) // cold: from the durable store
		check(t, c) // warm: from the cache
	})
}
