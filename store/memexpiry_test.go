package store

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The memory store drops tombstones and expired values once their retention
// has passed, as Badger does (issue 23, item 9: 200,000 values that expired
// a month ago stayed held, +44 MiB of heap for no live key).
func TestMemoryDropsExpiredValuesAndTombstones(t *testing.T) {
	now := time.Now()
	m := NewMemory()
	monthAgo := now.Add(-30 * 24 * time.Hour)
	stamp := func(at time.Time) uint64 { return uint64(at.UnixMilli()) << 16 } // clock.Wall's inverse
	value := bytes.Repeat([]byte("v"), 100)

	// 200,000 values that expired a month ago, and as many tombstones of a
	// month ago: past their retention when they arrive (a replay, a restore).
	before := heapInUse()
	const n = 200_000
	for i := 0; i < n; i += 1000 {
		var b kv.Write
		for j := i; j < i+1000; j++ {
			b.Changes = append(b.Changes,
				kv.Change{Key: fmt.Appendf(nil, "expired-%06d", j), Value: value, Version: 1, Timestamp: stamp(monthAgo), ExpiresAt: uint64(monthAgo.UnixMilli())},
				kv.Change{Key: fmt.Appendf(nil, "removed-%06d", j), Remove: true, Version: 2, Timestamp: stamp(monthAgo)})
		}
		if err := m.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	grew := int64(heapInUse()) - int64(before)
	if held := len(m.data); held != 0 {
		t.Errorf("%d entries held for no live key", held)
	}
	if grew > 4<<20 {
		t.Errorf("the heap grew %d MiB for no live key", grew>>20)
	}
	t.Logf("%d expired values and %d old tombstones applied: %d held, heap %+.1f MiB", n, n, len(m.data), float64(grew)/(1<<20))
}

// Tombstones and expired values are held for their retention (their
// versions count), and go when it has passed: at the next write, without a
// read of them.
func TestMemoryHoldsWhatExpiresForItsRetention(t *testing.T) {
	now := time.Now()
	m := NewMemoryClock(func() time.Time { return now })
	stamp := func(at time.Time) uint64 { return uint64(at.UnixMilli()) << 16 } // clock.Wall's inverse
	value := bytes.Repeat([]byte("v"), 100)

	var b kv.Write
	for j := range 1000 {
		b.Changes = append(b.Changes,
			kv.Change{Key: fmt.Appendf(nil, "ttl-%03d", j), Value: value, Version: 1, Timestamp: stamp(now), ExpiresAt: uint64(now.Add(time.Hour).UnixMilli())},
			kv.Change{Key: fmt.Appendf(nil, "rm-%03d", j), Remove: true, Version: 4, Timestamp: stamp(now)})
	}
	if err := m.Apply(b); err != nil {
		t.Fatal(err)
	}
	wrote := now
	now = wrote.Add(kv.TombstoneRetention - time.Minute)
	if r, _ := m.Get([]byte("rm-007")); r.Found || r.Value.Version != 4 {
		t.Fatalf("a tombstone within its retention: %+v, want its version 4", r)
	}
	if r, _ := m.Get([]byte("ttl-007")); !r.Found || r.Live(now).Found || r.Value.Version != 1 {
		t.Fatalf("an expired value within its retention: %+v, want it held, not live", r)
	}
	if len(m.data) != 2000 {
		t.Fatalf("%d held within the retention, want 2000", len(m.data))
	}
	now = wrote.Add(kv.TombstoneRetention + time.Minute)
	if r, _ := m.Get([]byte("rm-007")); r.Value.Version != 0 {
		t.Fatalf("a tombstone past its retention: %+v, want it gone", r)
	}
	if r, _ := m.Get([]byte("ttl-007")); r.Value.Version != 1 {
		t.Fatalf("a value expired an hour later than the tombstone: %+v, want it held", r)
	}
	now = wrote.Add(time.Hour + kv.TombstoneRetention + time.Minute)
	if err := m.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("live"), Value: value, Version: 1, Timestamp: stamp(now)}}}); err != nil {
		t.Fatal(err)
	}
	if len(m.data) != 1 || len(m.deadlines.items) != 0 {
		t.Fatalf("%d entries and %d deadlines held past the retention, want the one live key and none", len(m.data), len(m.deadlines.items))
	}
}

// A key rewritten with a TTL again and again (a counter) has one deadline,
// not one a write.
func TestMemoryOneDeadlineAKey(t *testing.T) {
	now := time.Now()
	m := NewMemoryClock(func() time.Time { return now })
	for v := range uint64(10_000) {
		now = now.Add(time.Millisecond)
		c := kv.Change{Key: []byte("counter"), Value: []byte("1"), Version: v + 1, Timestamp: uint64(now.UnixMilli()) << 16, ExpiresAt: uint64(now.Add(time.Hour).UnixMilli())}
		if err := m.Apply(kv.Write{Changes: []kv.Change{c}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.data) != 1 || len(m.deadlines.items) != 1 {
		t.Fatalf("%d entries, %d deadlines, want 1 and 1", len(m.data), len(m.deadlines.items))
	}
	if err := m.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("counter"), Value: []byte("2"), Version: 10_001, Timestamp: uint64(now.UnixMilli()) << 16}}}); err != nil {
		t.Fatal(err)
	}
	if len(m.deadlines.items) != 0 {
		t.Fatalf("a value without expiry kept its old deadline")
	}
}
