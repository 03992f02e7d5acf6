// Package router answers "who owns this key": key → slot → partition → node.
//
//	t := router.NewTable(16, []router.Partition{{ID: 1, Range: keyspace.Range{From: 0, To: 16}, Epoch: 1, Node: "n1", Addr: "127.0.0.1:7400"}})
//	slot, p, ok := t.Lookup([]byte("user:42"))
//
// A Table is immutable: a new registry view is a new Table, swapped in whole.
package router

import (
	"fmt"
	"sort"

	"github.com/sluicedb/sluice/keyspace"
)

// Partition is one entry of the routing table.
type Partition struct {
	ID    uint32
	Range keyspace.Range
	Epoch uint64
	// Node is the owner's node id; Addr its data-plane address.
	Node string
	Addr string
	// Standbys keep a copy and serve SESSION and EVENTUAL reads; StandbyAddrs
	// are their data-plane addresses, in the same order.
	Standbys     []string
	StandbyAddrs []string
}

// Table maps every slot to the partition that owns it.
type Table struct {
	slots  int32
	bySlot []int // slot → index in parts, -1 when no partition owns it
	parts  []Partition
	byID   map[uint32]int
}

// NewTable builds a table; partitions must not overlap.
func NewTable(slots int32, parts []Partition) (*Table, error) {
	t := &Table{slots: slots, bySlot: make([]int, slots), parts: append([]Partition(nil), parts...), byID: make(map[uint32]int)}
	sort.Slice(t.parts, func(i, j int) bool { return t.parts[i].Range.From < t.parts[j].Range.From })
	for i := range t.bySlot {
		t.bySlot[i] = -1
	}
	for i, p := range t.parts {
		if err := p.Range.Validate(slots); err != nil {
			return nil, fmt.Errorf("router: partition %d: %w", p.ID, err)
		}
		if _, dup := t.byID[p.ID]; dup {
			return nil, fmt.Errorf("router: partition id %d appears twice", p.ID)
		}
		t.byID[p.ID] = i
		for s := p.Range.From; s < p.Range.To; s++ {
			if j := t.bySlot[s]; j >= 0 {
				return nil, fmt.Errorf("router: partitions %d %s and %d %s overlap", t.parts[j].ID, t.parts[j].Range, p.ID, p.Range)
			}
			t.bySlot[s] = i
		}
	}
	return t, nil
}

// Slots is the cluster's slot count.
func (t *Table) Slots() int32 { return t.slots }

// Lookup returns the key's slot and the partition that owns it.
func (t *Table) Lookup(key []byte) (int32, Partition, bool) {
	slot := keyspace.Slot(key, t.slots)
	p, ok := t.BySlot(slot)
	return slot, p, ok
}

// BySlot returns the partition that owns slot.
func (t *Table) BySlot(slot int32) (Partition, bool) {
	if slot < 0 || slot >= t.slots || t.bySlot[slot] < 0 {
		return Partition{}, false
	}
	return t.parts[t.bySlot[slot]], true
}

// ByID returns the partition with id.
func (t *Table) ByID(id uint32) (Partition, bool) {
	i, ok := t.byID[id]
	if !ok {
		return Partition{}, false
	}
	return t.parts[i], true
}

// Partitions lists the partitions in slot order.
func (t *Table) Partitions() []Partition { return append([]Partition(nil), t.parts...) }
