package partition

import (
	"sync/atomic"
	"time"
)

// Linearizable reads without the loop. A linearizable read goes through
// the inbox so that it comes after every write the partition took. When
// none is pending (every write the core took is in the store) and the
// lease holds (no other owner can have written since), the store's
// committed state is the partition's whole acknowledged state: a read of
// it, from the read cache or the store, is linearizable at the moment it
// found the partition quiet, whatever it reads after (the state only moves
// forward, through this owner's commits). The loop publishes until when
// that holds after every Ready (core.QuietUntil); a write it takes
// afterwards is not acknowledged before it publishes again, and a read
// that found it quiet before is linearized before that write.

// quiet is until when the partition is quiet, in nanoseconds since base
// (the monotonic clock); 0: not quiet.
type quiet struct {
	base  time.Time
	until atomic.Int64
}

// publishQuiet records core.QuietUntil. The loop's.
func (p *Partition) publishQuiet(until time.Time) {
	if until.IsZero() {
		p.quiet.until.Store(0)
		return
	}
	p.quiet.until.Store(int64(until.Sub(p.quiet.base)))
}

// isQuiet reports whether a read of committed state is linearizable now:
// the loop found the partition quiet, its lease holds, and no restore or
// failed store write began since (values.restoring, set before the loop
// publishes again).
func (p *Partition) isQuiet() bool {
	u := p.quiet.until.Load()
	return u > 0 && int64(time.Since(p.quiet.base)) < u && p.Serving() && !p.values.restoring.Load()
}
