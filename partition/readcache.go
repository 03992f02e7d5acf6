package partition

import (
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

// ReadCache is a node's cache of committed values, shared by its
// partitions under one byte budget (--read-cache): each partition keeps its
// keys there, with their version and expiry, so reads of every consistency
// level and most writes skip the store (values.go). Badger's point lookups
// walk every level for a key's newest version; a hit is a hash lookup. The
// eviction policy is otter's (W-TinyLFU, bounded by weight: a key's and its
// value's bytes plus entryOverhead).
type ReadCache struct {
	c        *otter.Cache[cacheKey, cached] // nil: disabled
	budget   int64
	maxValue int // values larger are cached without their data (version only)
}

// cacheKey is a key of one partition generation: a partition takes a new
// generation when it starts and when a restore begins or ends, so entries
// of an earlier store state are never found again (they age out).
type cacheKey struct {
	gen uint64
	key string
}

// cached is a key's committed state as the store holds it. hasData is
// false for a value too large to cache: its version, expiry and presence
// are still exact, for writes that need no data.
type cached struct {
	data      []byte
	version   uint64
	timestamp uint64
	expiresAt uint64
	found     bool
	hasData   bool
}

// entryOverhead is what one entry costs beside its key and value bytes:
// otter's node and hash table slot, the cacheKey and cached structs and
// the key's string header (measured by TestReadCacheStaysWithinItsBudget).
const entryOverhead = 160

// generations numbers partition generations node-wide.
var generations atomic.Uint64

// DefaultReadCache is --read-cache's default: 32 MiB holds about 120,000
// keys of 100-byte values (the benchmarks' working set of 100,000), and a
// node that read 1 M such keys through it keeps less anonymous memory than
// Redis holding them; with 64 MiB it kept 1.26× Redis's, most of it heap
// spans the cache's churn left partly used (BENCHMARKS.md, "Memory with 1 M
// keys").
const DefaultReadCache = 32 << 20

// NewReadCache returns a cache of budget bytes; budget <= 0 disables it
// (every read goes to the store).
func NewReadCache(budget int64) *ReadCache {
	rc := &ReadCache{budget: budget}
	if budget <= 0 {
		return rc
	}
	rc.maxValue = int(min(budget/64, 64<<10))
	rc.c = otter.Must(&otter.Options[cacheKey, cached]{
		MaximumWeight: uint64(budget),
		StatsRecorder: stats.NewCounter(),
		Weigher: func(k cacheKey, v cached) uint32 {
			return uint32(len(k.key) + len(v.data) + entryOverhead)
		},
	})
	return rc
}

// Budget is the cache's byte budget (0: disabled).
func (rc *ReadCache) Budget() int64 {
	if rc == nil || rc.c == nil {
		return 0
	}
	return rc.budget
}

// Used is the weight of the entries held, in bytes.
func (rc *ReadCache) Used() int64 {
	if rc == nil || rc.c == nil {
		return 0
	}
	return int64(rc.c.WeightedSize())
}

// Keys is the number of entries held.
func (rc *ReadCache) Keys() int {
	if rc == nil || rc.c == nil {
		return 0
	}
	return rc.c.EstimatedSize()
}

// Stats are the cache's hits, misses and evictions so far.
func (rc *ReadCache) Stats() stats.Stats {
	if rc == nil || rc.c == nil {
		return stats.Stats{}
	}
	return rc.c.Stats()
}

// Close stops the cache's background work.
func (rc *ReadCache) Close() {
	if rc != nil && rc.c != nil {
		rc.c.StopAllGoroutines()
	}
}
