package ingest

import (
	"reflect"
	"testing"
)

func TestLagCountsFromTheEnd(t *testing.T) {
	applied := map[int32]int64{0: 0, 1: 0, 2: 0}
	l := NewLag(func() map[int32]int64 { return applied })
	s := l.started(map[int32]int64{0: 0, 1: 0})
	// Slot 0: records 0-9 are data, 10 and 11 commit markers.
	l.fetch(s, 0, 12, 10, 12)
	l.SetEnds(map[int32]int64{1: 5, 2: 3, 3: 9})
	l.SetEnds(map[int32]int64{1: 4}) // a stale listing never lowers an end
	applied[0] = 4
	want := []SlotLag{
		{Slot: 0, End: 12, Fetched: 0, Applied: 8},
		{Slot: 1, End: 5, Fetched: 5, Applied: 5},
		{Slot: 2, End: 3, Fetched: -1, Applied: 3}, // no consumer: no fetched figure
		// slot 3: owned by no partition here
	}
	if got := l.Slots(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Every data record applied: the markers after it are nothing to apply.
	applied[0] = 10
	if got := l.Slots()[0]; got.Applied != 0 {
		t.Fatalf("slot 0 after applying its last data record: %+v", got)
	}
	// One record short of the last data record is not applied.
	applied[0] = 9
	if got := l.Slots()[0]; got.Applied != 3 {
		t.Fatalf("slot 0 one record short: %+v", got)
	}
}

// A consumer that ends after its successor of the same slot started (a
// re-sync) leaves the successor's position alone.
func TestLagIgnoresAReplacedConsumer(t *testing.T) {
	l := NewLag(func() map[int32]int64 { return map[int32]int64{0: 0} })
	old := l.started(map[int32]int64{0: 0})
	l.fetch(old, 0, 3, 3, 10)
	cur := l.started(map[int32]int64{0: 2})
	l.fetch(old, 0, 9, 9, 10)
	l.stopped(old, map[int32]int64{0: 0})
	if got := l.Slots()[0]; got.Fetched != 8 {
		t.Fatalf("fetched lag %d, want 8 (the current consumer is at 2 of 10)", got.Fetched)
	}
	l.stopped(cur, map[int32]int64{0: 2})
	if got := l.Slots()[0]; got.Fetched != -1 {
		t.Fatalf("fetched lag %d after the consumer stopped, want unknown", got.Fetched)
	}
}
