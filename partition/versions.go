package partition

import (
	"sync"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
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
	timestamp uint64
	expiresAt uint64
	found     bool
}

func newVersions(max int) *versions {
	return &versions{m: make(map[string]version), max: max}
}

// cached reports, for callers, which of req's keys the cache holds.
func (c *versions) cached(req *core.Request) []bool {
	out := make([]bool, req.NumKeys())
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i := range out {
		_, out[i] = c.m[string(req.KeyAt(i))]
	}
	return out
}

// Fill gives req, from the cache, the state of the keys its caller did not
// read: what the store holds after seen writes. For the loop, the only
// writer: no lock.
func (c *versions) Fill(req *core.Request, seen uint64) {
	for i := range req.Reads {
		if req.Reads[i].OK {
			continue
		}
		if v, ok := c.m[string(req.KeyAt(i))]; ok {
			r := kv.Read{Value: kv.Value{Version: v.n, Timestamp: v.timestamp, ExpiresAt: v.expiresAt}, Found: v.found}
			req.Reads[i] = core.Read{Read: r, OK: true, Seen: seen}
		}
	}
}

// Applied records the changes the loop wrote to the store.
func (c *versions) Applied(changes []kv.Change) {
	if c.max <= 0 {
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
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(string(key), r)
}

// putLocked stores r's version, evicting an arbitrary entry when full (Go's
// map iteration starts at a random place: random replacement).
func (c *versions) putLocked(key string, r kv.Read) {
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = version{n: r.Value.Version, timestamp: r.Value.Timestamp, expiresAt: r.Value.ExpiresAt, found: r.Found}
}

// Reset empties the cache: the store was rewritten.
func (c *versions) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = make(map[string]version)
}
