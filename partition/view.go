package partition

import (
	"context"
	"maps"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
)

// view serves reads of a store's committed state, from any goroutine, and
// tells how far into the changelog that state reaches. Partitions and
// standbys both have one.
type view struct {
	st      store.Store
	applied atomic.Pointer[appliedOffsets]
	done    <-chan struct{}
	// cache is the partition's part of the node's read cache, read first
	// (a standby has none).
	cache *values
}

// appliedOffsets is published after every store write; changed is closed
// when a newer one is published.
type appliedOffsets struct {
	offsets map[int32]int64
	// ingest is the next ingest offset per slot whose changes the store
	// holds (a partition's; a standby does not track it).
	ingest  map[int32]int64
	changed chan struct{}
}

// ReadCommitted reads key's committed state; an expired value is absent.
func (v *view) ReadCommitted(key []byte) (kv.Read, error) {
	if err := kv.ValidateKey(key); err != nil {
		return kv.Read{}, err
	}
	r, err := v.get(key)
	return r.Live(time.Now()), err
}

// get reads key's committed state from the cache, or from the store (and
// caches it).
func (v *view) get(key []byte) (kv.Read, error) {
	if !v.cache.on() {
		return v.st.Get(key)
	}
	if e, ok := v.cache.get(key); ok && e.hasData {
		return e.read(), nil
	}
	seq, _ := v.cache.begin()
	r, err := v.st.Get(key)
	if err == nil {
		v.cache.fill(key, r, seq)
	}
	return r, err
}

// getMany reads keys' committed state at one point within b (store.Store.
// GetManyWithin): from the cache if it holds every key, otherwise from the
// store, caching what it read.
func (v *view) getMany(keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
	if !v.cache.on() {
		return v.st.GetManyWithin(keys, b)
	}
	if reads, ok := v.cache.getAll(keys, b, time.Now()); ok {
		return reads, nil
	}
	seq, _ := v.cache.begin()
	reads, err := v.st.GetManyWithin(keys, b)
	if err != nil {
		return reads, err
	}
	for i, r := range reads {
		if !r.Found && r.Value.ExpiresAt != 0 {
			continue // expired, answered without its value: not the store's state
		}
		v.cache.fill(keys[i], r, seq)
	}
	return reads, nil
}

// ReadCommittedMany reads keys' committed state at one point, in order,
// until a value does not fit in b: out[i] is keys[i] for i < len(out), the
// keys from len(out) on were not read (store.Store.GetManyWithin). A nil b
// reads every key.
func (v *view) ReadCommittedMany(keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
	for _, k := range keys {
		if err := kv.ValidateKey(k); err != nil {
			return nil, err
		}
	}
	reads, err := v.getMany(keys, b)
	now := time.Now()
	for i := range reads {
		reads[i] = reads[i].Live(now)
	}
	return reads, err
}

// ScanCommitted calls fn, in key order, for the live committed keys of
// [start, end) (an empty end: no upper bound) until fn returns false: one
// store read transaction, so one point of the partition's committed state
// however long fn takes. It never returns a value whose transaction has not
// committed. The caller checks that the replica serves.
func (v *view) ScanCommitted(start, end []byte, fn func(key []byte, v kv.Value) bool) error {
	return v.st.Scan(start, end, fn)
}

// Applied returns the next changelog offset per slot that the store holds.
func (v *view) Applied() map[int32]int64 {
	if a := v.applied.Load(); a != nil {
		return a.offsets
	}
	return nil
}

// AppliedIngest returns the next ingest offset per slot whose changes are
// committed to the changelog and applied to the store: how far ingest is
// readable (the ingest lag to applied state counts from here).
func (v *view) AppliedIngest() map[int32]int64 {
	if a := v.applied.Load(); a != nil {
		return a.ingest
	}
	return nil
}

// WaitApplied waits until the store holds slot's changelog up to offset (a
// write's session token), or ctx ends.
func (v *view) WaitApplied(ctx context.Context, slot int32, offset int64) error {
	for {
		a := v.applied.Load()
		if a != nil && a.offsets[slot] >= offset {
			return nil
		}
		var changed <-chan struct{}
		if a != nil {
			changed = a.changed
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond): // before the first publish there is no channel
		case <-ctx.Done():
			return ctx.Err()
		case <-v.done:
			return ErrStopped
		}
	}
}

// publish records that the store now holds the changelog up to update and
// the ingest topic up to ingest (either may be nil). Published maps are
// never changed: readers keep them without copying.
func (v *view) publish(update, ingest map[int32]int64) {
	old := v.applied.Load()
	next := &appliedOffsets{offsets: map[int32]int64{}, changed: make(chan struct{})}
	if old != nil {
		next.offsets = maps.Clone(old.offsets)
		next.ingest = old.ingest
	}
	for s, o := range update {
		next.offsets[s] = max(next.offsets[s], o)
	}
	if len(ingest) > 0 {
		next.ingest = maps.Clone(next.ingest)
		if next.ingest == nil {
			next.ingest = make(map[int32]int64, len(ingest))
		}
		for s, o := range ingest {
			next.ingest[s] = max(next.ingest[s], o)
		}
	}
	v.applied.Store(next)
	if old != nil {
		close(old.changed)
	}
}
