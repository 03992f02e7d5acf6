package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/wal"
)

// flush hands the next group to the appender when none is in flight: group
// commit, the next group builds while one is appended.
func (c *Core) flush(now time.Time) {
	if c.state != Serving || c.inflight != nil {
		return
	}
	if len(c.sealed) == 0 {
		if c.open.empty() {
			return
		}
		c.seal()
	}
	g := c.sealed[0]
	c.sealed = c.sealed[1:]
	g.addMarks(c.cfg.Epoch, now)
	c.inflight = g
	c.ready.Append = g
}

// Appended reports the outcome of group n's append: offsets of its records
// if it committed, else an error wrapping wal.ErrNotCommitted or
// wal.ErrCommitUnknown.
func (c *Core) Appended(now time.Time, n uint64, offsets []int64, err error) {
	g := c.inflight
	if g == nil || g.N != n {
		return // from before a re-sync: its requests have failed already
	}
	c.inflight = nil
	if err != nil {
		c.appendFailed(now, g, err)
		return
	}
	g.Offsets = offsets
	c.committed = n
	if g.Began.After(c.proven) {
		c.proven = g.Began // ownership held when the group was handed out: it committed
	}
	c.lm.commit(n, c.release)
	c.unapplied = append(c.unapplied, g)
	c.ready.Apply = append(c.ready.Apply, g)
	c.flush(now)
	c.maybeStop()
}

// release sends a held reply, with the positions of its records.
func (c *Core) release(h held) {
	for j, i := range h.recs {
		if i < 0 {
			h.reply.Results[j] = WriteResult{Offset: -1}
			continue
		}
		r := h.g.Records[i]
		h.reply.Results[j] = WriteResult{Version: r.Change.Version, Timestamp: r.Change.Timestamp, Slot: r.Slot, Offset: h.g.Offsets[i]}
	}
	if h.reply.Handle != nil {
		c.reply(h.reply)
	}
}

// appendFailed fails group g's requests with its error (which says whether
// g may have committed) and every later one as never appended, then
// re-syncs: the log decides what is true.
func (c *Core) appendFailed(now time.Time, g *Group, err error) {
	if errors.Is(err, wal.ErrPermanent) {
		// Appending the same records again would fail again. Isolate the
		// ingest records this group took; one refused on its own goes to the
		// DLQ, so a poison pill never loops.
		if g.isolated != nil {
			c.poisoned[*g.isolated] = fmt.Sprintf("the log refuses it: %v", err)
		}
		for slot, next := range g.Ingest {
			c.quarantine[slot] = max(c.quarantine[slot], next)
		}
	}
	failed := fmt.Errorf("%w: %w", ErrAppendFailed, err)
	never := fmt.Errorf("%w: %w", ErrAppendFailed, wal.ErrNotCommitted)
	c.failPending(g.N, failed, never)
	c.startResync()
}

// Applied reports that group n (the oldest committed one) is in the store,
// or that writing it failed (the partition then re-syncs).
func (c *Core) Applied(now time.Time, n uint64, err error) {
	if len(c.unapplied) == 0 || c.unapplied[0].N != n {
		panic(fmt.Sprintf("core: Applied(%d) out of order", n))
	}
	g := c.unapplied[0]
	c.unapplied = c.unapplied[1:]
	keys := make([]string, 0, len(g.Records))
	for _, r := range g.Records {
		if r.Change.Key != nil {
			keys = append(keys, string(r.Change.Key))
		}
	}
	c.recent.note(keys)
	for _, k := range keys {
		if pv, ok := c.overlay[k]; ok && pv.group <= n {
			delete(c.overlay, k)
		}
	}
	if err != nil {
		c.breakdown(now, fmt.Errorf("applying to the store: %w", err))
	}
	c.maybeRestore()
	c.maybeStop()
}

// breakdown handles a failure of the partition's own making (the store):
// every pending request fails, a group handed to the appender with an
// unknown outcome, and the partition re-syncs.
func (c *Core) breakdown(now time.Time, err error) {
	if c.state != Serving && c.state != Closing {
		return
	}
	unknown := fmt.Errorf("%w: %w: %w", ErrAppendFailed, err, wal.ErrCommitUnknown)
	never := fmt.Errorf("%w: %w: %w", ErrAppendFailed, err, wal.ErrNotCommitted)
	if c.inflight != nil {
		c.failPending(c.inflight.N, unknown, never)
	} else {
		c.failPending(0, unknown, never)
	}
	c.inflight = nil
	c.startResync()
}

// failPending fails every reply not yet released: those waiting on groups up
// to last (handed to the appender) with upTo, the others (never appended)
// with after; and drops the speculative view and the groups not appended.
func (c *Core) failPending(last uint64, upTo, after error) {
	c.lm.fail(0, func(group uint64) error {
		if group <= last {
			return upTo
		}
		return after
	}, c.release)
	c.overlay = make(map[string]pending)
	n := max(last, c.open.N)
	c.open = &Group{N: n + 1}
	c.sealed = nil
}

// startResync stops serving and asks for a restore once no store write is
// outstanding.
func (c *Core) startResync() {
	if c.state == Closing {
		c.maybeStop()
		return
	}
	c.state = Restoring
	c.ready.StopIngest = true
	c.ingesting = false
	c.resync = true
	c.maybeRestore()
}

func (c *Core) maybeRestore() {
	if c.resync && len(c.unapplied) == 0 && c.state == Restoring {
		c.resync = false
		c.restoring = true
		c.restored = nil
		c.ready.Restore = true
	}
}

// Restored reports the end of a restore.
func (c *Core) Restored(now time.Time, r Restore) {
	if !c.restoring || c.state != Restoring {
		c.restoring = false
		return // closed meanwhile
	}
	c.restoring = false
	if r.Err != nil {
		c.state = Deposed
		c.deposed = r.Err
		return
	}
	c.clock = clock.New(r.Clock)
	c.ingestPos = r.Ingest
	c.recent.reset()
	c.proven = r.FencedAt
	c.restored = &r
	c.Tick(now)
}

// serveAt is when a restored partition may serve: LeaseWait after fencing
// returned, unless no other process can have served its epoch.
func (c *Core) serveAt() time.Time {
	if c.restored.SkipLeaseWait {
		return c.restored.FencedAt
	}
	return c.restored.FencedAt.Add(c.cfg.LeaseWait)
}

// Tick tells the core the time: a restored partition serves once its lease
// wait is over; a close stops waiting for the group in flight at its deadline.
func (c *Core) Tick(now time.Time) {
	switch {
	case c.state == Restoring && c.restored != nil:
		if at := c.serveAt(); now.Before(at) {
			c.ready.WakeAt = at
			return
		}
		c.restored = nil
		c.state = Serving
		c.ingestGen++
		c.ingesting = true
		from := make(map[int32]int64, len(c.ingestPos))
		for s, o := range c.ingestPos {
			from[s] = o
		}
		c.ready.StartIngest = &IngestStart{Gen: c.ingestGen, From: from}
	case c.state == Closing && c.inflight != nil:
		if now.Before(c.drainBy) {
			c.ready.WakeAt = c.drainBy
			return
		}
		c.failPending(c.inflight.N, fmt.Errorf("%w: %w", ErrStopped, wal.ErrCommitUnknown), ErrStopped)
		c.inflight = nil
		c.maybeStop()
	}
}

// Close stops the partition gracefully: it takes no more requests, fails the
// ones never appended (ErrStopped: safe to retry on the next owner), waits
// (up to DrainTimeout) for the group in flight so its requests get their true
// outcome, writes what committed to the store, then stops.
func (c *Core) Close(now time.Time) {
	switch c.state {
	case Serving:
		c.state = Closing
		c.ready.StopIngest = true
		c.ingesting = false
		last := uint64(0)
		if c.inflight != nil {
			last = c.inflight.N
		}
		c.lm.fail(last+1, func(uint64) error { return ErrStopped }, c.release)
		for k, pv := range c.overlay {
			if pv.group > last {
				delete(c.overlay, k) // the open groups' writes; earlier ones are in flight or committed
			}
		}
		c.open = &Group{N: max(last, c.open.N) + 1}
		c.sealed = nil
		c.drainBy = now.Add(c.cfg.DrainTimeout)
		c.Tick(now)
		c.maybeStop()
	case Closing, Stopped:
	default:
		c.stop()
	}
}

// Kill stops the partition at once: a group in flight fails its requests with
// an unknown outcome, the others as never appended.
func (c *Core) Kill(now time.Time) {
	if c.state == Stopped {
		return
	}
	last := uint64(0)
	if c.inflight != nil {
		last = c.inflight.N
	}
	c.failPending(last, fmt.Errorf("%w: %w", ErrStopped, wal.ErrCommitUnknown), ErrStopped)
	c.inflight = nil
	c.stop()
}

// maybeStop stops a closing partition once nothing is in flight or unapplied.
func (c *Core) maybeStop() {
	if c.state == Closing && c.inflight == nil && len(c.unapplied) == 0 {
		c.stop()
	}
}

func (c *Core) stop() {
	c.state = Stopped
	c.ingesting = false
	c.ready.StopIngest = true
	c.ready.Stop = true
}

// ReadFailed reports that the loop could not read req's keys from the store:
// req fails (it never reached a group: not applied) and the partition
// re-syncs.
func (c *Core) ReadFailed(now time.Time, req *Request, err error) {
	c.fail(req, fmt.Errorf("%w: reading the store: %w: %w", ErrAppendFailed, err, wal.ErrNotCommitted))
	c.breakdown(now, fmt.Errorf("reading the store: %w", err))
}
