package partition

import (
	"sync"

	"github.com/sluicedb/sluice/store"
)

// versions caches what a write needs to know of a committed key — whether it
// exists, its version and expiry — for the most recently written and read
// keys, so most writes build their change without a store read (an LSM read
// per key was 40 % of a node's CPU under batched upserts). Only the loop
// writes it, from store writes it applies and store reads it makes, so a
// cached entry always equals the store's; a restore empties it. Callers may
// ask whether keys are cached (to skip prefetching them), under the read lock.
type versions struct {
	mu  sync.RWMutex
	m   map[string]version
	max int
}

type version struct {
	n         uint64
	expiresAt uint64
	found     bool
}

func newVersions(max int) *versions {
	return &versions{m: make(map[string]version), max: max}
}

// value is the cached entry as a store value without data.
func (v version) value() store.Value { return store.Value{Version: v.n, ExpiresAt: v.expiresAt} }

// get is for the loop, which is the only writer: it needs no lock.
func (c *versions) get(key []byte) (version, bool) {
	v, ok := c.m[string(key)]
	return v, ok
}

// cached reports, for callers, which of keys the cache holds.
func (c *versions) cached(keys [][]byte) []bool {
	out := make([]bool, len(keys))
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, k := range keys {
		_, out[i] = c.m[string(k)]
	}
	return out
}

// applied records the changes the loop wrote to the store; keys[i] is
// changes[i].Key as a string (made once by the caller).
func (c *versions) applied(keys []string, changes []store.Change) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ch := range changes {
		c.putLocked(keys[i], version{n: ch.Version, expiresAt: ch.ExpiresAt, found: !ch.Remove})
	}
}

// read records a value the loop read from the store (or a valid prefetch).
func (c *versions) read(key []byte, v store.Value, found bool) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(string(key), version{n: v.Version, expiresAt: v.ExpiresAt, found: found})
}

// putLocked stores e, evicting an arbitrary entry when full (Go's map
// iteration starts at a random place: random replacement).
func (c *versions) putLocked(key string, e version) {
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}

// reset empties the cache: the store was rewritten.
func (c *versions) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = make(map[string]version)
}
