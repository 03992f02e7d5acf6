package core

// Reads of the store happen outside the core, on the caller's goroutine
// before the request is queued (many callers in parallel) or on the loop
// for what Stale names. A value read before the n-th store write is still
// the store's if no write after it touched the key. The core remembers, for
// its last recentApplies writes, which keys each wrote; a read of a key is
// current if every write since it was made is remembered and none touched
// the key.

// recentApplies and recentKeys bound what the core remembers: enough for the
// time a request waits in the inbox, a few MiB at most.
const (
	recentApplies = 64
	recentKeys    = 1 << 16
)

type recent struct {
	n       uint64            // store writes so far
	trimmed uint64            // writes up to this one are forgotten
	last    map[string]uint64 // key → the newest remembered write of it
	writes  [][]string        // keys of each remembered write, oldest first
	keys    int               // sum of len(writes[i])
}

func (r *recent) init() { r.last = make(map[string]uint64) }

// note records one store write of keys.
func (r *recent) note(keys []string) {
	r.n++
	for _, k := range keys {
		r.last[k] = r.n
	}
	r.writes = append(r.writes, keys)
	r.keys += len(keys)
	for len(r.writes) > recentApplies || r.keys > recentKeys {
		r.trimmed++
		for _, k := range r.writes[0] {
			if r.last[k] == r.trimmed {
				delete(r.last, k)
			}
		}
		r.keys -= len(r.writes[0])
		r.writes[0] = nil
		r.writes = r.writes[1:]
	}
}

// reset forgets every write: the store was rewritten (a restore), so no value
// read before now may be used.
func (r *recent) reset() {
	r.n++
	r.trimmed = r.n
	r.last = make(map[string]uint64)
	r.writes, r.keys = nil, 0
}

// current says a read of key made after seen store writes is still the store's.
func (r *recent) current(key []byte, seen uint64) bool {
	return seen == r.n || seen >= r.trimmed && r.last[string(key)] <= seen
}

// Stale returns the indices of req's keys whose committed state the core does
// not know: not written by a pending group, and not read (or read before a
// store write that may have changed it). The loop reads them from the store
// (Read.Seen = Applies()) before Request. A read it finds current is marked
// as seen at Applies(), so Request need not look it up again.
func (c *Core) Stale(req *Request) []int {
	var out []int
	for i := range req.NumKeys() {
		key := req.KeyAt(i)
		if _, ok := c.overlay[string(key)]; ok {
			continue
		}
		if i < len(req.Reads) && req.Reads[i].OK && c.recent.current(key, req.Reads[i].Seen) {
			req.Reads[i].Seen = c.recent.n
			continue
		}
		out = append(out, i)
	}
	return out
}
