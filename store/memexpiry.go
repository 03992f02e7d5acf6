package store

import (
	"container/heap"

	"github.com/sluicedb/sluice/kv"
)

// The memory store drops what Badger drops: a tombstone, or a value past its
// expiry, is kept for kv.TombstoneRetention (so versions keep growing across
// removals and replays agree with the store) and then goes, entry and all.
// Badger does it with each entry's ExpiresAt (retainUntil); the memory store
// keeps those deadlines in a heap, one item per key, and drops the keys whose
// deadline has passed at every Apply, so a node whose values all expired
// holds none of them, however long it runs.

// retainUntilRead is retainUntil of a stored state: the unix second from
// which the store no longer holds it; 0 for a live value without expiry.
func retainUntilRead(r kv.Read) uint64 {
	if !r.Found && r.Value.Version == 0 {
		return 0 // nothing stored
	}
	return retainUntil(kv.Change{Remove: !r.Found, Timestamp: r.Value.Timestamp, ExpiresAt: r.Value.ExpiresAt})
}

// retained reports whether r is still held at unix second now, as Badger
// would: an entry is gone from its ExpiresAt on.
func retained(r kv.Read, now uint64) bool {
	until := retainUntilRead(r)
	return until == 0 || until > now
}

// deadlines is a min-heap of the keys that have a retention deadline, with
// at most one item a key.
type deadlines struct {
	items []*deadline
	byKey map[string]*deadline
}

type deadline struct {
	key   string
	until uint64
	i     int
}

func newDeadlines() *deadlines { return &deadlines{byKey: make(map[string]*deadline)} }

// set gives key the deadline until, or none for 0.
func (d *deadlines) set(key string, until uint64) {
	it, ok := d.byKey[key]
	switch {
	case ok && until == 0:
		heap.Remove((*deadlineHeap)(d), it.i)
		delete(d.byKey, key)
	case ok:
		it.until = until
		heap.Fix((*deadlineHeap)(d), it.i)
	case until != 0:
		it = &deadline{key: key, until: until}
		d.byKey[key] = it
		heap.Push((*deadlineHeap)(d), it)
	}
}

// due removes and returns the keys whose deadline is at or before now.
func (d *deadlines) due(now uint64, fn func(key string)) {
	for len(d.items) > 0 && d.items[0].until <= now {
		it := heap.Pop((*deadlineHeap)(d)).(*deadline)
		delete(d.byKey, it.key)
		fn(it.key)
	}
}

// deadlineHeap is deadlines as a heap.Interface.
type deadlineHeap deadlines

func (h *deadlineHeap) Len() int           { return len(h.items) }
func (h *deadlineHeap) Less(i, j int) bool { return h.items[i].until < h.items[j].until }
func (h *deadlineHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].i, h.items[j].i = i, j
}
func (h *deadlineHeap) Push(x any) {
	it := x.(*deadline)
	it.i = len(h.items)
	h.items = append(h.items, it)
}
func (h *deadlineHeap) Pop() any {
	n := len(h.items) - 1
	it := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	return it
}
