package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
)

// Cached is a write-through cache over a durable store: a Badger database on
// a fast local disk (the VM's NVMe) in front of one on a slower durable disk
// (a network-attached managed disk). Writes go to the durable store first,
// then to the cache; reads come from the cache and fill it on a miss. What
// the cache holds always equals the durable store's state of those keys:
//
//   - Apply writes the durable store, then the cache, under mu;
//   - a miss fills the cache under mu and only if the key is still absent,
//     so a fill carrying a value read before an Apply never overwrites what
//     that Apply wrote (the Apply got there first, or comes after the fill);
//   - on open the cache is kept only if it was closed cleanly and its
//     offsets, ingest offsets and clock equal the durable store's; otherwise
//     it is dropped (a crash between the two writes leaves it behind; a
//     power cut may have kept a later unsynced cache write without an
//     earlier one);
//   - a dropped cache starts with the durable store's offsets, ingest
//     offsets and clock, so from then on every write reaches both and the
//     next open can prove the cache current (a dropped cache that started
//     empty lacked the ingest offsets of every slot no ingest reached since,
//     and was dropped again at every start);
//   - whoever writes the durable store behind the cache's back (a snapshot
//     load, a write-ahead log that is the durable store) calls Resync
//     before the partition serves again; a fill that read the durable store
//     before a drop never writes what it read after it (gen).
//
// A key that was never written is cached as absent too (version 0), so
// repeated reads of missing keys stay off the durable store.
type Cached struct {
	durable Store
	cache   *Badger
	dir     string
	mu      sync.Mutex
	// gen counts the drops (and Clears) of the cache: a fill of a durable
	// read made before one is not written after it.
	gen atomic.Uint64
	// broken: a cache write failed, so the cache may miss a change; reads go
	// to the durable store until the next open drops the cache.
	broken atomic.Bool
	// restores counts AtRestore's calls: only the first may keep the cache.
	restores atomic.Int64
	// Kept says whether Open kept the cache it found (false: dropped or new).
	Kept bool
	// Dropped, if not nil, is why Open could not open the cache it found
	// and made a new one (cacheopen.go).
	Dropped error
}

var _ Store = (*Cached)(nil)

// cleanFile marks a cache that was closed cleanly.
const cleanFile = "clean"

// OpenCached opens (or creates) the cache in dir over durable. The cache is
// dropped unless it was closed cleanly and reaches exactly the durable
// store's offsets, ingest offsets and clock (Resync).
func OpenCached(durable Store, dir string) (*Cached, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: cache: %w", err)
	}
	clean := filepath.Join(dir, cleanFile)
	_, err := os.Stat(clean)
	wasClean := err == nil
	// From here a crash leaves no mark: the next open drops what it finds.
	if err := os.Remove(clean); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store: cache: %w", err)
	}
	cache, dropped, err := openCache(filepath.Join(dir, "badger"))
	if err != nil {
		return nil, fmt.Errorf("store: cache: %w", err)
	}
	c := &Cached{durable: durable, cache: cache, dir: dir, Dropped: dropped}
	c.Kept, err = c.Resync(wasClean)
	if err != nil {
		cache.Close()
		return nil, fmt.Errorf("store: cache: %w", err)
	}
	return c, nil
}

// Resync makes the cache provably current again after the durable store
// may have been written behind its back. With keepIfInStep it keeps the
// cache if its offsets, ingest offsets and clock equal the durable store's
// (every write since it was last current reached both); otherwise, or
// without keepIfInStep, it drops the cache and gives it the durable store's
// offsets, ingest offsets and clock. It reports whether it kept the cache.
// Nothing may write the durable store meanwhile (the partition does not
// serve, its older appenders are fenced). A failed drop leaves the cache
// unused (reads go to the durable store) and unmarked at Close.
func (c *Cached) Resync(keepIfInStep bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if keepIfInStep {
		ok, err := c.inStep()
		if err != nil || ok {
			return ok, err
		}
	}
	c.gen.Add(1)
	if err := c.drop(); err != nil {
		c.broken.Store(true)
		return false, err
	}
	c.broken.Store(false)
	return false, nil
}

// AtRestore makes the cache provably current each time its partition is
// about to serve: call it once the restore's new appender has fenced the
// older ones (nothing writes the durable store behind the cache's back any
// more), or was refused. first says this was the first call since the cache
// was opened.
//
//   - The first keeps the cache if it is still at the durable store's
//     offsets, ingest offsets and clock (OpenCached proved it so; a
//     snapshot loaded into an empty durable store since moves them).
//   - Every later one (a re-sync) drops it. A re-sync follows a write whose
//     outcome is unknown or a failed store read or write, and what the cache
//     holds then proves nothing: with --wal disk the group in flight, whose
//     requests got UNKNOWN, may be in the durable store without the cache
//     (the appender writes it there, the loop's apply that writes the cache
//     never came), an intent recovered by the new appender too, and a miss
//     may have filled the cache with a write whose sync failed. A cache
//     behind the durable store served a value it no longer held, and a CAS
//     against that value succeeded (issue 23.1).
//
// The drop happens also after a refused appender (a failed sync): the cache
// must not keep what a miss read of an unsynced write. node (cache.go) and
// the partition simulator both call this one rule.
func (c *Cached) AtRestore() (kept, first bool, err error) {
	first = c.restores.Add(1) == 1
	kept, err = c.Resync(first)
	return kept, first, err
}

// drop empties the cache and writes into it the durable store's offsets,
// ingest offsets and clock, in one write.
func (c *Cached) drop() error {
	if err := c.cache.DropAll(); err != nil {
		return err
	}
	var (
		meta kv.Write
		err  error
	)
	if meta.Offsets, err = c.durable.Offsets(); err != nil {
		return err
	}
	if meta.Ingest, err = c.durable.IngestOffsets(); err != nil {
		return err
	}
	if meta.Clock, err = c.durable.Clock(); err != nil {
		return err
	}
	return c.cache.ApplyAtomic(meta)
}

// inStep says whether the cache is at the durable store's offsets, ingest
// offsets and clock.
func (c *Cached) inStep() (bool, error) {
	for _, get := range []func(Store) (map[int32]int64, error){Store.Offsets, Store.IngestOffsets} {
		want, err := get(c.durable)
		if err != nil {
			return false, err
		}
		got, err := get(c.cache)
		if err != nil {
			return false, err
		}
		if !maps.Equal(want, got) {
			return false, nil
		}
	}
	want, err := c.durable.Clock()
	if err != nil {
		return false, err
	}
	got, err := c.cache.Clock()
	return err == nil && got == want, err
}

func (c *Cached) Get(key []byte) (kv.Read, error) {
	reads, err := c.GetMany([][]byte{key})
	if err != nil {
		return kv.Read{}, err
	}
	return reads[0], nil
}

// GetMany reads the cached keys in one cache transaction and the others in
// one durable read, then caches those.
func (c *Cached) GetMany(keys [][]byte) ([]kv.Read, error) {
	if c.broken.Load() {
		return c.durable.GetMany(keys)
	}
	out := make([]kv.Read, len(keys))
	var missed []int
	err := c.cache.db.View(func(txn *badger.Txn) error {
		for i, k := range keys {
			r, ok, err := lookup(txn, k)
			if err != nil {
				return err
			}
			if ok {
				out[i] = r
			} else {
				missed = append(missed, i)
			}
		}
		return nil
	})
	if err != nil {
		// The cache is disposable: one that cannot be read (its disk lost
		// pages) is not used again until the next open drops it, and never
		// passes for a corrupt durable store.
		c.broken.Store(true)
		return c.durable.GetMany(keys)
	}
	if len(missed) == 0 {
		return out, nil
	}
	mkeys := make([][]byte, len(missed))
	for j, i := range missed {
		mkeys[j] = keys[i]
	}
	gen := c.gen.Load()
	reads, err := c.durable.GetMany(mkeys)
	if err != nil {
		return nil, err
	}
	for j, i := range missed {
		out[i] = reads[j]
	}
	c.fill(gen, mkeys, reads)
	return out, nil
}

// lookup reads key from the cache; ok is false when the cache does not hold it.
func lookup(txn *badger.Txn, key []byte) (kv.Read, bool, error) {
	item, err := txn.Get(dataKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return kv.Read{}, false, nil
	}
	if err != nil {
		return kv.Read{}, false, err
	}
	var r kv.Read
	err = item.Value(func(raw []byte) error {
		r, err = decodeRead(raw)
		r.Value.Data = bytes.Clone(r.Value.Data)
		return err
	})
	return r, err == nil, err
}

// fill caches what a miss read from the durable store, for the keys the
// cache still does not hold, unless the cache was dropped since the read
// (gen): the durable store may have moved behind the cache's back then. A
// failed fill is only a later miss.
func (c *Cached) fill(gen uint64, keys [][]byte, reads []kv.Read) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || c.broken.Load() {
		return
	}
	_ = c.cache.db.Update(func(txn *badger.Txn) error {
		for i, k := range keys {
			if _, ok, err := lookup(txn, k); err != nil || ok {
				continue
			}
			r := reads[i]
			e := badger.NewEntry(dataKey(k), encodeRead(r))
			if r.Found || r.Value.Version != 0 {
				// An expired value read within a budget is absent with its
				// expiry: kept as long as the durable store keeps it.
				e.ExpiresAt = retainUntil(kv.Change{Remove: !r.Found && r.Value.ExpiresAt == 0, Timestamp: r.Value.Timestamp, ExpiresAt: r.Value.ExpiresAt})
			}
			if err := txn.SetEntry(e); err != nil {
				return err // too big a fill: the rest stays uncached
			}
		}
		return nil
	})
}

// Apply writes the durable store, then the cache. The batch is durable (or
// not) by the first write; a failed cache write stops the cache serving.
func (c *Cached) Apply(b kv.Write) error {
	if err := c.durable.Apply(b); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken.Load() {
		return nil
	}
	if err := c.cache.Apply(b); err != nil {
		c.broken.Store(true)
	}
	return nil
}

// Offsets, IngestOffsets, Clock, Len and Each are the durable store's: the
// cache holds only some keys.
func (c *Cached) Offsets() (map[int32]int64, error)       { return c.durable.Offsets() }
func (c *Cached) IngestOffsets() (map[int32]int64, error) { return c.durable.IngestOffsets() }
func (c *Cached) Clock() (uint64, error)                  { return c.durable.Clock() }
func (c *Cached) SyncedAt() (int64, error)                { return c.durable.SyncedAt() }

// Clear empties the durable store and the cache.
func (c *Cached) Clear() error {
	if err := c.durable.Clear(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if err := c.cache.Clear(); err != nil {
		c.broken.Store(true)
	}
	return nil
}
func (c *Cached) Len() (int, error) { return c.durable.Len() }
func (c *Cached) Each(fn func(key []byte, v kv.Value) bool) error {
	return c.durable.Each(fn)
}

// Scan is the durable store's: a scan reads every key of a range, which the
// cache may hold only some of.
func (c *Cached) Scan(start, end []byte, fn func(key []byte, v kv.Value) bool) error {
	return c.durable.Scan(start, end, fn)
}

// Close closes the cache and the durable store, then marks the cache clean
// unless a write to it or either close failed: a durable store that could
// not close (a memtable it could not flush to the disk) may hold less than
// the cache read from it.
func (c *Cached) Close() error {
	err := errors.Join(c.cache.Close(), c.durable.Close())
	if err == nil && !c.broken.Load() {
		err = os.WriteFile(filepath.Join(c.dir, cleanFile), nil, 0o600)
	}
	return err
}

// GetManyWithin is GetMany within b, charged in the keys' order whichever
// store holds each: it finds which keys the cache holds, reads the misses
// from the durable store within what b has left (at most that much more),
// then takes each key's size from b in order, copying a cached value only
// once it fits, and stops at the first that does not. So the first key is
// read whenever its value fits in b, cached or not.
func (c *Cached) GetManyWithin(keys [][]byte, b *ReadBudget) ([]kv.Read, error) {
	if b == nil {
		return c.GetMany(keys)
	}
	if c.broken.Load() {
		return c.durable.GetManyWithin(keys, b)
	}
	var out []kv.Read
	gen := c.gen.Load()
	var mkeys [][]byte
	var reads []kv.Read
	err := c.cache.db.View(func(txn *badger.Txn) error {
		items := make([]*badger.Item, len(keys)) // nil: a miss
		for i, k := range keys {
			item, err := txn.Get(dataKey(k))
			switch {
			case errors.Is(err, badger.ErrKeyNotFound):
				mkeys = append(mkeys, k)
			case err != nil:
				return err
			default:
				items[i] = item
			}
		}
		if len(mkeys) > 0 {
			var err error
			if reads, err = c.durable.GetManyWithin(mkeys, NewReadBudget(b.Left())); err != nil {
				return err
			}
		}
		now := time.Now()
		out = make([]kv.Read, 0, len(keys))
		m := 0 // the misses met so far
		for _, item := range items {
			var r kv.Read
			if item == nil {
				if m == len(reads) {
					return nil // a miss the durable read did not reach
				}
				if r = reads[m]; !b.take(len(r.Value.Data)) {
					return nil
				}
				m++
				out = append(out, r)
				continue
			}
			fits := true
			err := item.Value(func(raw []byte) error {
				var err error
				if r, err = decodeRead(raw); err != nil {
					return err
				}
				if r, fits = b.admit(r, now); fits {
					r.Value.Data = bytes.Clone(r.Value.Data)
				}
				return nil
			})
			if err != nil || !fits {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.fill(gen, mkeys[:len(reads)], reads)
	return out, nil
}
