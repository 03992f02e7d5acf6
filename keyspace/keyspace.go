// Package keyspace maps keys to slots and slots to ranges.
//
// A slot is a partition of sluice's Kafka topics. slot(key) is Kafka's default
// partitioner, toPositive(murmur2(key)) % S, so any Kafka producer using its
// client's default partitioner writes a key to the slot sluice expects:
//
//	s := keyspace.Slot([]byte("user:42"), 16)
//	r := keyspace.Range{From: 0, To: 4}
//	r.Contains(s)
package keyspace

import "fmt"

// DefaultSlots is the slot count of a new cluster's topics.
const DefaultSlots = 16

// Slot returns the slot of key among slots slots: Kafka's default partitioner.
func Slot(key []byte, slots int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % slots
}

// murmur2 is the hash of Kafka's Java client (Utils.murmur2), seed 0x9747b28c.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Range is the half-open slot range [From, To) a partition owns.
type Range struct {
	From int32 `json:"from"`
	To   int32 `json:"to"`
}

// Contains reports whether slot is in r.
func (r Range) Contains(slot int32) bool { return slot >= r.From && slot < r.To }

// Len is the number of slots in r.
func (r Range) Len() int32 { return r.To - r.From }

// Overlaps reports whether r and o share a slot.
func (r Range) Overlaps(o Range) bool { return r.From < o.To && o.From < r.To }

// Slots lists the slots of r.
func (r Range) Slots() []int32 {
	s := make([]int32, 0, r.Len())
	for i := r.From; i < r.To; i++ {
		s = append(s, i)
	}
	return s
}

func (r Range) String() string { return fmt.Sprintf("[%d,%d)", r.From, r.To) }

// Validate reports a range that is empty or reaches outside [0, slots).
func (r Range) Validate(slots int32) error {
	if r.From < 0 || r.To > slots || r.From >= r.To {
		return fmt.Errorf("keyspace: slot range %s is empty or outside [0,%d)", r, slots)
	}
	return nil
}

// Split cuts [0, slots) into n contiguous ranges of near-equal size.
func Split(slots int32, n int) []Range {
	out := make([]Range, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, Range{From: int32(int64(slots) * int64(i) / int64(n)), To: int32(int64(slots) * int64(i+1) / int64(n))})
	}
	return out
}
