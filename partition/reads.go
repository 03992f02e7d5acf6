package partition

import (
	"github.com/sluicedb/sluice/partition/core"
)

// Reads of the current state. A write must know each key's current version
// before the core can build its change. Three things keep store reads off the
// loop, whose work is serial:
//
//   - the core's overlay: keys written by groups not yet applied;
//   - values (values.go): the node's read cache of committed keys' values
//     and versions, also what reads of every level look at first;
//   - prefetch: the caller's goroutine reads from the store the keys the
//     cache does not hold before it enqueues the request, many callers in
//     parallel; the core uses those values unless a store write since could
//     have changed them (core.Stale).
//
// What is left, the driver reads (core.Driver.Step).

// prefetch reads into req the committed state of its keys, on the caller's
// goroutine: from the cache (values.go) where it holds them (with their
// values, for a request that reads values), from the store for the rest,
// which it caches. A failed read leaves req without values: the loop
// reads, and handles the error.
func (p *Partition) prefetch(req *core.Request) {
	if req.Reads != nil {
		return // read by the caller (GetMany within a budget)
	}
	n := req.NumKeys()
	seen := p.applies.Load()
	reads := make([]core.Read, n)
	var missed []int
	if p.values.on() {
		data := req.NeedsData()
		for i := range n {
			if e, ok := p.values.get(req.KeyAt(i)); ok && (e.hasData || !data) {
				reads[i] = core.Read{Read: e.read(), OK: true, Seen: seen}
			} else {
				missed = append(missed, i)
			}
		}
	} else {
		missed = make([]int, n)
		for i := range missed {
			missed[i] = i
		}
	}
	if len(missed) > 0 {
		keys := make([][]byte, len(missed))
		for j, i := range missed {
			keys[j] = req.KeyAt(i)
		}
		seq, _ := p.values.begin()
		got, err := p.cfg.Store.GetMany(keys)
		if err != nil {
			if len(missed) == n {
				return
			}
			got = nil // the loop reads the keys missed
		}
		for j, r := range got {
			reads[missed[j]] = core.Read{Read: r, OK: true, Seen: seen}
			if p.values.on() {
				p.values.fill(keys[j], r, seq)
			}
		}
	}
	req.Reads = reads
}
