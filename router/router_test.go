package router

import (
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

func TestTable(t *testing.T) {
	tb, err := NewTable(16, []Partition{
		{ID: 2, Range: keyspace.Range{From: 8, To: 16}, Node: "b"},
		{ID: 1, Range: keyspace.Range{From: 0, To: 8}, Node: "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "b", "c", "user:1", "user:2"} {
		slot, p, ok := tb.Lookup([]byte(key))
		if !ok || !p.Range.Contains(slot) || slot != keyspace.Slot([]byte(key), 16) {
			t.Fatalf("Lookup(%q) = %d %+v %v", key, slot, p, ok)
		}
	}
	if p, ok := tb.ByID(2); !ok || p.Node != "b" {
		t.Fatalf("ByID(2) = %+v %v", p, ok)
	}
	if _, ok := tb.ByID(3); ok {
		t.Fatal("ByID(3) found")
	}
	if _, ok := tb.BySlot(16); ok {
		t.Fatal("BySlot(16) found")
	}
	if ps := tb.Partitions(); ps[0].ID != 1 {
		t.Fatalf("Partitions not in slot order: %+v", ps)
	}
}

func TestTableRejectsOverlapsAndBadRanges(t *testing.T) {
	if _, err := NewTable(16, []Partition{{ID: 1, Range: keyspace.Range{From: 0, To: 9}}, {ID: 2, Range: keyspace.Range{From: 8, To: 16}}}); err == nil {
		t.Fatal("overlap accepted")
	}
	if _, err := NewTable(16, []Partition{{ID: 1, Range: keyspace.Range{From: 0, To: 17}}}); err == nil {
		t.Fatal("range past the slots accepted")
	}
	if _, err := NewTable(16, []Partition{{ID: 1, Range: keyspace.Range{From: 0, To: 2}}, {ID: 1, Range: keyspace.Range{From: 2, To: 4}}}); err == nil {
		t.Fatal("duplicate id accepted")
	}
	tb, err := NewTable(16, []Partition{{ID: 1, Range: keyspace.Range{From: 0, To: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.BySlot(5); ok {
		t.Fatal("an unowned slot has an owner")
	}
}
