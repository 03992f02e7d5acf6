package partition

import (
	"time"

	"github.com/sluicedb/sluice/store"
)

// Reads of the current value. A write must know each key's current value (its
// version) before the loop can build its change. Three things keep store
// reads off the loop, whose work is serial:
//
//   - the overlay: keys written by groups not yet applied;
//   - versions (versions.go): a bounded cache of committed keys' versions,
//     enough for writes that need no data;
//   - prefetch: the caller's goroutine reads from the store the keys the
//     cache does not hold before it enqueues the request, many callers in
//     parallel, and the loop uses those values unless a store write since
//     could have changed them.
//
// The loop counts its store writes (applies). A caller notes the count, then
// reads: what it reads is at least as new as that write. The loop remembers,
// for its last recentApplies writes, which keys each wrote; a prefetched value
// of a key is still the store's if no write after the noted one touched the
// key and every such write is still remembered. Otherwise the loop reads.

// recentApplies and recentKeys bound what the loop remembers: enough for the
// time a request waits in the inbox, a few MiB at most.
const (
	recentApplies = 64
	recentKeys    = 1 << 16
)

// prefetched is one key's value as the caller read it; ok is false for a key
// it did not read.
type prefetched struct {
	store.Read
	ok bool
}

// prefetch reads into req the committed values of its keys, on the caller's
// goroutine; keys whose version is cached are skipped when the request needs
// no data. A failed read leaves req without values: the loop reads, and
// handles the error.
func (p *Partition) prefetch(req *request) {
	all := req.keys()
	keys := all
	var skip []bool
	if !req.needsData() {
		skip = p.versions.cached(all)
		keys = nil
		for i, k := range all {
			if !skip[i] {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return
	}
	seen := p.applies.Load()
	reads, err := p.cfg.Store.GetMany(keys)
	if err != nil {
		return
	}
	pre := make([]prefetched, len(all))
	for i, j := 0, 0; i < len(pre); i++ {
		if skip == nil || !skip[i] {
			pre[i] = prefetched{Read: reads[j], ok: true}
			j++
		}
	}
	req.pre, req.seen = pre, seen
}

// lookup reads req's i-th key from the speculative view: the overlay, then —
// for a write that needs no data — the version cache, then the caller's
// prefetched value if it is still the store's, then the store. An expired
// value is absent.
func (s *loopState) lookup(req *request, i int) (store.Value, bool, error) {
	key := req.keyAt(i)
	v, found, err := s.read(req, i, key, req.needsData())
	if err != nil {
		return store.Value{}, false, err
	}
	if found && v.Expired(time.Now()) {
		return store.Value{}, false, nil
	}
	return v, found, nil
}

func (s *loopState) read(req *request, i int, key []byte, data bool) (store.Value, bool, error) {
	if pv, ok := s.overlay[string(key)]; ok {
		return pv.v, !pv.removed, nil
	}
	if !data {
		if e, ok := s.p.versions.get(key); ok {
			return e.value(), e.found, nil
		}
	}
	v, found, err := s.readStore(req, i, key)
	if err == nil && !data {
		s.p.versions.read(key, v, found) // a write follows: remember the version it makes
	}
	return v, found, err
}

// readStore reads key's committed value: the caller's prefetched one if no
// store write since could have changed it, else from the store.
func (s *loopState) readStore(req *request, i int, key []byte) (store.Value, bool, error) {
	if req.pre != nil && req.pre[i].ok && req.seen >= s.applied.trimmed && s.applied.last[string(key)] <= req.seen {
		return req.pre[i].Value, req.pre[i].Found, nil
	}
	return s.p.cfg.Store.Get(key)
}

// applied is what the loop remembers of its store writes.
type applied struct {
	n       uint64            // store writes so far
	trimmed uint64            // writes up to this one are forgotten
	last    map[string]uint64 // key → the newest remembered write of it
	writes  [][]string        // keys of each remembered write, oldest first
	keys    int               // sum of len(writes[i])
}

// note records the store write of changes and publishes its number.
func (a *applied) note(p *Partition, changes []store.Change) {
	a.n++
	keys := make([]string, len(changes))
	for i, c := range changes {
		keys[i] = string(c.Key)
		a.last[keys[i]] = a.n
	}
	a.writes = append(a.writes, keys)
	a.keys += len(keys)
	for len(a.writes) > recentApplies || a.keys > recentKeys {
		a.trimmed++
		for _, k := range a.writes[0] {
			if a.last[k] == a.trimmed {
				delete(a.last, k)
			}
		}
		a.keys -= len(a.writes[0])
		a.writes[0] = nil
		a.writes = a.writes[1:]
	}
	p.applies.Store(a.n)
	p.versions.applied(keys, changes)
}

// reset forgets every write: the store was rewritten (a restore), so no value
// read before now may be used.
func (a *applied) reset(p *Partition) {
	a.n++
	a.trimmed = a.n
	a.last = make(map[string]uint64)
	a.writes, a.keys = nil, 0
	p.applies.Store(a.n)
	p.versions.reset()
}
