package partition

import (
	"github.com/sluicedb/sluice/partition/core"
)

// Reads of the current state. A write must know each key's current version
// before the core can build its change. Three things keep store reads off the
// loop, whose work is serial:
//
//   - the core's overlay: keys written by groups not yet applied;
//   - versions (versions.go): a bounded cache of committed keys' versions,
//     enough for writes that need no data;
//   - prefetch: the caller's goroutine reads from the store the keys the
//     cache does not hold before it enqueues the request, many callers in
//     parallel; the core uses those values unless a store write since could
//     have changed them (core.Stale).
//
// What is left, the driver reads (core.Driver.Step).

// prefetch reads into req the committed state of its keys, on the caller's
// goroutine; keys whose version is cached are skipped when the request needs
// no data. A failed read leaves req without values: the loop reads, and
// handles the error.
func (p *Partition) prefetch(req *core.Request) {
	if req.Reads != nil {
		return // read by the caller (GetMany within a budget)
	}
	n := req.NumKeys()
	var skip []bool
	if !req.NeedsData() {
		skip = p.versions.cached(req)
	}
	keys := make([][]byte, 0, n)
	for i := range n {
		if skip == nil || !skip[i] {
			keys = append(keys, req.KeyAt(i))
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
	req.Reads = make([]core.Read, n)
	for i, j := 0, 0; i < n; i++ {
		if skip == nil || !skip[i] {
			req.Reads[i] = core.Read{Read: reads[j], OK: true, Seen: seen}
			j++
		}
	}
}
