package core

import (
	"time"

	"github.com/sluicedb/sluice/kv"
)

func (c *Core) get(now time.Time, req *Request) {
	r, answered := c.single(now, req)
	if !answered {
		c.replyObserved(now, req, [][]byte{req.Key}, Reply{Read: r})
	}
}

// getMany reads many keys of the partition at one point: one step, one reply.
func (c *Core) getMany(now time.Time, req *Request) {
	reads := make([]kv.Read, len(req.Keys))
	for i, key := range req.Keys {
		if err := c.check(key); err != nil {
			c.fail(req, err)
			return
		}
		r, _, ok := c.lookup(req, i, now)
		if !ok {
			c.fail(req, errUnread)
			return
		}
		reads[i] = r
	}
	c.replyObserved(now, req, req.Keys, Reply{Reads: reads})
}

// replyObserved answers a request whose reply rests on what it read of keys:
// a read, or a refusal (a compare-and-set whose expected version is not the
// current one, an increment of a value that is not an integer). Committed
// state read within the lease is durable and still this owner's: answer now.
// Otherwise the reply waits until everything before it is durable, so it
// never rests on what a failed append or a newer owner could take back; if
// that append fails, so does the request.
func (c *Core) replyObserved(now time.Time, req *Request, keys [][]byte, r Reply) {
	r.Handle = req.Handle
	speculative := false
	for _, k := range keys {
		if pv, ok := c.overlay[string(k)]; ok && pv.group > c.committed {
			speculative = true
			break
		}
	}
	if !speculative && c.leased(now) {
		c.reply(r)
		return
	}
	if !c.leased(now) && c.open.empty() && len(c.sealed) == 0 {
		// Past the lease, and no group waits to be handed out: commit a
		// heartbeat to prove ownership. Only a group handed out after this
		// read proves it: one already in flight may have committed before
		// the read arrived, its answer delayed (the process paused), and a
		// newer owner may have written since. (Within the lease, a read of
		// a speculative value waits only for the group that wrote it.)
		c.open.add(kv.Record{Kind: kv.KindHeartbeat, Slot: c.cfg.Range.From, Epoch: c.cfg.Epoch})
	}
	c.hold(held{group: c.lastGroup(), reply: r})
}

// leased reports whether a commit proved ownership within the lease.
func (c *Core) leased(now time.Time) bool {
	return c.cfg.Lease <= 0 || now.Sub(c.proven) < c.cfg.Lease
}

// lastGroup is the newest group holding a write: the one a read must wait for.
func (c *Core) lastGroup() uint64 {
	if !c.open.empty() {
		return c.open.N
	}
	if n := len(c.sealed); n > 0 {
		return c.sealed[n-1].N
	}
	if c.inflight != nil {
		return c.inflight.N
	}
	return c.open.N
}

func (c *Core) hold(h held) { c.lm.hold(h) }
