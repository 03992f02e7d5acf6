package partition

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
)

// values is one partition's part of the node's ReadCache: its committed
// keys' values, versions and expiries, so that reads of every level and
// writes that need no data skip the store (an LSM read per key was 40 % of
// a node's CPU under batched upserts, 82 % under GetMany).
//
// It never holds a state the store does not:
//
//   - the loop, the store's only writer, updates it in the same step as
//     every store write (Writing before, Wrote after), and records what it
//     reads from the store (Read): the loop cannot race itself;
//   - a read outside the loop caches what it read from the store (fill)
//     only if no store write began since it started (seq, a sequence lock:
//     odd while the loop writes), checked under the key's lock, so a value
//     the loop replaced while the read was in flight is never put back; the
//     loop's own update of a key waits for that lock and comes after;
//   - a restore's beginning and end, and a failed store write, give the
//     partition a new generation (Reset): what was cached before is never
//     found again; while a restore rewrites the store, nothing is filled.
//
// A read of many keys outside the loop is at one point if seq was the
// same even number before and after it (getAll).
type values struct {
	rc        *ReadCache
	gen       atomic.Uint64
	seq       atomic.Uint64
	restoring atomic.Bool
}

// newValues is a partition's part of rc (nil or disabled: no cache).
func newValues(rc *ReadCache) *values {
	v := &values{rc: rc}
	v.gen.Store(generations.Add(1))
	return v
}

func (v *values) on() bool { return v != nil && v.rc != nil && v.rc.c != nil }

// get looks key up. Any goroutine.
func (v *values) get(key []byte) (cached, bool) {
	if len(key) == 0 {
		return cached{}, false
	}
	// The key is not kept by a lookup: no copy of it.
	return v.rc.c.GetIfPresent(cacheKey{gen: v.gen.Load(), key: unsafe.String(&key[0], len(key))})
}

// entry is r as the cache holds it; a value larger than the cache's
// maxValue is held without its data.
func (v *values) entry(r kv.Read) cached {
	e := cached{version: r.Value.Version, timestamp: r.Value.Timestamp, expiresAt: r.Value.ExpiresAt, found: r.Found}
	if !r.Found || len(r.Value.Data) <= v.rc.maxValue {
		e.hasData = true
		e.data = r.Value.Data
	}
	return e
}

// written is ch's key and entry, both copied into one allocation: the
// caller's buffers may be reused once its write is done.
func (v *values) written(ch kv.Change) (string, cached) {
	e := v.entry(ch.Read())
	n := len(ch.Key)
	if e.hasData {
		n += len(e.data)
	}
	buf := make([]byte, n)
	copy(buf, ch.Key)
	if e.hasData && len(e.data) > 0 {
		e.data = buf[len(ch.Key):]
		copy(e.data, ch.Value)
	}
	if len(ch.Key) == 0 {
		return "", e
	}
	return unsafe.String(&buf[0], len(ch.Key)), e
}

// read is e as a store read.
func (e cached) read() kv.Read {
	return kv.Read{Value: kv.Value{Data: e.data, Version: e.version, Timestamp: e.timestamp, ExpiresAt: e.expiresAt}, Found: e.found}
}

// begin is where a read outside the loop starts: the sequence to give
// fill, and whether the cache may answer it at one point (no store write
// in progress).
func (v *values) begin() (seq uint64, ok bool) {
	s := v.seq.Load()
	return s, s%2 == 0 && !v.restoring.Load()
}

// unchanged reports whether no store write began since begin returned seq.
func (v *values) unchanged(seq uint64) bool { return v.seq.Load() == seq }

// fill caches r, read from the store outside the loop after begin returned
// seq, unless a store write or a reset began since. Any goroutine.
func (v *values) fill(key []byte, r kv.Read, seq uint64) {
	if seq%2 == 1 {
		return
	}
	v.rc.c.Compute(cacheKey{gen: v.gen.Load(), key: string(key)}, func(old cached, found bool) (cached, otter.ComputeOp) {
		if v.seq.Load() != seq || v.restoring.Load() || (found && old.hasData) {
			return old, otter.CancelOp
		}
		return v.entry(r), otter.WriteOp
	})
}

// getAll reads keys' committed state at one point from the cache alone,
// within b: ok is false, and nothing taken from b, unless every key is
// cached with its data and no store write began meanwhile.
func (v *values) getAll(keys [][]byte, b *store.ReadBudget, now time.Time) (reads []kv.Read, ok bool) {
	seq, ok := v.begin()
	if !ok {
		return nil, false
	}
	reads = make([]kv.Read, len(keys))
	for i, k := range keys {
		e, hit := v.get(k)
		if !hit || !e.hasData {
			return nil, false
		}
		reads[i] = e.read()
	}
	if !v.unchanged(seq) {
		return nil, false
	}
	return admitAll(reads, b, now), true
}

// The loop's side: core.VersionCache.

// Fill gives req, from the cache, the state of the keys its caller did not
// read: what the store holds after seen writes. A request that reads
// values takes only entries that hold theirs.
func (v *values) Fill(req *core.Request, seen uint64) {
	if !v.on() {
		return
	}
	data := req.NeedsData()
	for i := range req.Reads {
		if req.Reads[i].OK {
			continue
		}
		if e, ok := v.get(req.KeyAt(i)); ok && (e.hasData || !data) {
			req.Reads[i] = core.Read{Read: e.read(), OK: true, Seen: seen}
		}
	}
}

// Read records a state the loop read from the store.
func (v *values) Read(key []byte, r kv.Read) {
	if !v.on() {
		return
	}
	v.rc.c.Set(cacheKey{gen: v.gen.Load(), key: string(key)}, v.entry(r))
}

// Writing says a store write begins: no read outside the loop fills the
// cache until Wrote.
func (v *values) Writing() { v.seq.Add(1) }

// Wrote records the changes the loop wrote to the store; a failed write
// may have written some of them, or none: the cache starts again.
func (v *values) Wrote(changes []kv.Change, err error) {
	if !v.on() {
		v.seq.Add(1)
		return
	}
	if err != nil {
		// A re-sync follows (Reset): until it ends, nothing is filled and
		// reads go through the loop (isQuiet).
		v.restoring.Store(true)
		v.gen.Store(generations.Add(1))
	} else {
		gen := v.gen.Load()
		for _, ch := range changes {
			key, e := v.written(ch)
			v.rc.c.Set(cacheKey{gen: gen, key: key}, e)
		}
	}
	v.seq.Add(1)
}

// Reset forgets the cached state: a restore begins (restoring: until it
// ends, nothing outside the loop caches what it reads, as the restore
// writes the store outside the loop's steps) or ended.
func (v *values) Reset(restoring bool) {
	if restoring {
		v.restoring.Store(true)
	}
	v.seq.Add(2)
	v.gen.Store(generations.Add(1))
	if !restoring {
		v.restoring.Store(false)
	}
}

// admitAll is reads as a read within b hands them out (store.ReadBudget.Admit),
// in order, up to the first that does not fit.
func admitAll(reads []kv.Read, b *store.ReadBudget, now time.Time) []kv.Read {
	if b == nil {
		return reads
	}
	for i, r := range reads {
		a, fits := b.Admit(r, now)
		if !fits {
			return reads[:i]
		}
		reads[i] = a
	}
	return reads
}
