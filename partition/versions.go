package partition

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
)

// versions caches what a write needs to know of a committed key — whether it
// exists, its version and expiry — for the most recently written and read
// keys, so most writes build their change without a store read (an LSM read
// per key was 40 % of a node's CPU under batched upserts). Only the loop
// writes it, from store writes it applies and store reads it makes, so a
// cached entry always equals the store's; a restore empties it. When full it
// drops the least recently used key (hashicorp/golang-lru): a dropped key
// costs a store read, never a wrong version. Callers may ask whether keys
// are cached (to skip prefetching them), under the read lock; a key dropped
// between that question and the loop's Fill is read by the loop.
type versions struct {
	mu  sync.RWMutex
	lru *simplelru.LRU[string, version] // nil: disabled
}

type version struct {
	n         uint64
	timestamp uint64
	expiresAt uint64
	found     bool
}

// newVersions returns a cache of max keys; max <= 0 disables it.
func newVersions(max int) *versions {
	c := &versions{}
	if max > 0 {
		c.lru, _ = simplelru.NewLRU[string, version](max, nil) // only a size <= 0 fails
	}
	return c
}

// cached reports, for callers, which of req's keys the cache holds.
func (c *versions) cached(req *core.Request) []bool {
	out := make([]bool, req.NumKeys())
	if c.lru == nil {
		return out
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i := range out {
		out[i] = c.lru.Contains(string(req.KeyAt(i))) // no recency update: safe under the read lock
	}
	return out
}

// Fill gives req, from the cache, the state of the keys its caller did not
// read: what the store holds after seen writes. The loop's. A hit leaves
// the key's recency alone: the write it fills makes the key the most
// recently used once applied (Applied).
func (c *versions) Fill(req *core.Request, seen uint64) {
	if c.lru == nil {
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i := range req.Reads {
		if req.Reads[i].OK {
			continue
		}
		if v, ok := c.lru.Peek(string(req.KeyAt(i))); ok {
			r := kv.Read{Value: kv.Value{Version: v.n, Timestamp: v.timestamp, ExpiresAt: v.expiresAt}, Found: v.found}
			req.Reads[i] = core.Read{Read: r, OK: true, Seen: seen}
		}
	}
}

// Applied records the changes the loop wrote to the store.
func (c *versions) Applied(changes []kv.Change) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		c.putLocked(string(ch.Key), ch.Read())
	}
}

// Read records a state the loop read from the store.
func (c *versions) Read(key []byte, r kv.Read) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(string(key), r)
}

// putLocked stores r's version, dropping the least recently used key when
// the cache is full.
func (c *versions) putLocked(key string, r kv.Read) {
	c.lru.Add(key, version{n: r.Value.Version, timestamp: r.Value.Timestamp, expiresAt: r.Value.ExpiresAt, found: r.Found})
}

// Reset empties the cache: the store was rewritten.
func (c *versions) Reset() {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Purge()
}
