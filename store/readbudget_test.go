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
		if err := s.Apply(kv.Write{Changes: []kv.Change{
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

// An expired value takes nothing from the budget: it is answered absent
// (its version kept), without its bytes, so keys after it are still read.
func TestGetManyWithinChargesNothingForExpiredValues(t *testing.T) {
	sized := func(n int) []byte { return bytes.Repeat([]byte("v"), n) }
	past := uint64(time.Now().Add(-time.Minute).UnixMilli()) // within the retention: still stored
	fill := func(t *testing.T, s Store) {
		if err := s.Apply(kv.Write{Changes: []kv.Change{
			{Key: []byte("x1"), Value: sized(200), Version: 3, ExpiresAt: past},
			{Key: []byte("x2"), Value: sized(200), Version: 4, ExpiresAt: past},
			{Key: []byte("live"), Value: sized(100), Version: 1},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	keys := [][]byte{[]byte("x1"), []byte("x2"), []byte("live")}
	check := func(t *testing.T, s Store) {
		t.Helper()
		b := NewReadBudget(250)
		reads, err := s.GetManyWithin(keys, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(reads) != 3 {
			t.Fatalf("within 250 bytes: %d of 3 keys read; the expired values took the budget", len(reads))
		}
		for i, want := range []uint64{3, 4} {
			if r := reads[i].Live(time.Now()); r.Found || len(reads[i].Value.Data) != 0 || r.Value.Version != want {
				t.Fatalf("expired %s = %+v, want absent at version %d without its bytes", keys[i], reads[i], want)
			}
		}
		if !reads[2].Found || len(reads[2].Value.Data) != 100 || b.Left() != 150 {
			t.Fatalf("live = %+v, %d bytes left; want its 100 bytes and 150 left", reads[2], b.Left())
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

// The cached store charges keys in their order whichever store holds them:
// an uncached key before cached ones is read if it fits, then the cached
// ones while they fit (before, the cached values took the budget first, the
// uncached key no longer fitted, and the answer was cut before it: empty).
func TestCachedGetManyWithinChargesInKeyOrder(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer durable.Close()
	keys := [][]byte{[]byte("cold"), []byte("w1"), []byte("w2"), []byte("w3")}
	var changes []kv.Change
	for _, k := range keys {
		changes = append(changes, kv.Change{Key: k, Value: bytes.Repeat(k[:1], 100), Version: 1})
	}
	if err := durable.Apply(kv.Write{Changes: changes}); err != nil {
		t.Fatal(err)
	}
	c := openCached(t, durable, t.TempDir())
	defer c.Close()
	if _, err := c.GetMany(keys[1:]); err != nil { // warms w1, w2, w3
		t.Fatal(err)
	}
	b := NewReadBudget(350)
	reads, err := c.GetManyWithin(keys, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 3 || string(reads[0].Value.Data[:1]) != "c" || string(reads[2].Value.Data[:1]) != "w" {
		t.Fatalf("within 350 bytes: %d reads, want cold, w1, w2", len(reads))
	}
	if b.Left() != 50 {
		t.Fatalf("%d bytes left, want 50", b.Left())
	}
	// Progress: the first key alone is read when it fits, cached or not.
	if reads, err := c.GetManyWithin([][]byte{[]byte("w3"), []byte("cold")}, NewReadBudget(100)); err != nil || len(reads) != 1 {
		t.Fatalf("within 100 bytes: %d reads, %v; want w3", len(reads), err)
	}
}
