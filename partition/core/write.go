package core

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/pipeline"
)

// errUnread answers a request whose caller did not read a key Stale named:
// a bug in the loop, never a reason to guess.
var errUnread = errors.New("partition: internal error: a key's committed state was not read")

// Request steps a request: validate, stamp, compute on the speculative view,
// add change records to the open group, hold the reply until the group that
// makes it true has committed.
func (c *Core) Request(now time.Time, req *Request) {
	if c.state != Serving {
		c.fail(req, c.unavailable())
		return
	}
	switch req.Op {
	case OpUpsert:
		c.upsert(now, req)
	case OpGet:
		c.get(now, req)
	case OpGetMany:
		c.getMany(now, req)
	case OpRemove:
		c.remove(now, req)
	case OpIncrement:
		c.increment(now, req)
	case OpIngest:
		c.ingest(now, req)
	default:
		c.fail(req, fmt.Errorf("%w %d", ErrUnknownOp, req.Op))
	}
	c.flush(now)
}

// lookup is the current state of req's i-th key at now: the overlay's, else
// what the caller read. ok is false if neither knows it.
func (c *Core) lookup(req *Request, i int, now time.Time) (r kv.Read, speculative, ok bool) {
	key := req.KeyAt(i)
	if pv, found := c.overlay[string(key)]; found {
		return pv.read.Live(now), true, true
	}
	if i < len(req.Reads) && req.Reads[i].OK && c.recent.current(key, req.Reads[i].Seen) {
		return req.Reads[i].Read.Live(now), false, true
	}
	return kv.Read{}, false, false
}

// write adds a change of key to the open group and the overlay, and returns
// its record's index in the group.
func (c *Core) write(ch kv.Change, src *kv.Source) int {
	slot := keyspace.Slot(ch.Key, c.cfg.Slots)
	i := c.open.add(kv.Record{Kind: kv.KindChange, Slot: slot, Change: ch, Epoch: c.cfg.Epoch, Ingest: src})
	c.overlay[string(ch.Key)] = pending{read: ch.Read(), group: c.open.N}
	return i
}

// next is the change that follows cur: one version up, one clock tick.
func (c *Core) next(key []byte, cur kv.Read, now time.Time) kv.Change {
	return kv.Change{Key: key, Version: cur.Value.Version + 1, Timestamp: c.clock.Next(now)}
}

func (c *Core) upsert(now time.Time, req *Request) {
	if err := kv.ValidateBatch(req.Entries); err != nil {
		c.fail(req, err)
		return
	}
	for _, e := range req.Entries {
		if err := c.owns(e.Key); err != nil {
			c.fail(req, err)
			return
		}
	}
	// The request's entries see each other in order: cur is each key's state
	// before the entry, after the earlier entries of the request.
	type state struct {
		read  kv.Read
		entry int // the entry that wrote read, -1 if none
	}
	local := make(map[string]state, len(req.Entries))
	for i, e := range req.Entries {
		st, seen := local[string(e.Key)]
		if !seen {
			r, _, ok := c.lookup(req, i, now)
			if !ok {
				c.fail(req, errUnread)
				return
			}
			st = state{read: r, entry: -1}
		}
		if e.Expected != nil && !matches(st.read, *e.Expected) {
			// A refusal is a read of the keys it rests on: like a Get, it must
			// not rest on a state that is not durable yet (its group could
			// still fail).
			current := uint64(0)
			if st.read.Found {
				current = st.read.Value.Version
			}
			keys := make([][]byte, i+1)
			for j := range keys {
				keys[j] = req.Entries[j].Key
			}
			c.replyObserved(now, req, keys, Reply{Err: &VersionMismatchError{Key: e.Key, Expected: *e.Expected, Current: current, Entry: st.entry}})
			return
		}
		next := kv.Read{Value: kv.Value{Version: st.read.Value.Version + 1}, Found: true}
		local[string(e.Key)] = state{read: next, entry: i}
	}
	// Stages run on every entry before anything is written, so a rejection
	// refuses the whole request. One clock tick per entry.
	changes := make([]kv.Change, len(req.Entries))
	keep := make([]bool, len(req.Entries))
	for i, e := range req.Entries {
		ts := c.clock.Next(now)
		w, ok, err := pipeline.Run(c.cfg.Stages, pipeline.Write{Key: e.Key, Value: e.Value, Source: "grpc", Timestamp: ts})
		if err != nil {
			c.fail(req, err)
			return
		}
		keep[i] = ok
		changes[i] = kv.Change{Key: e.Key, Value: nonNil(w.Value), Timestamp: ts, ExpiresAt: clock.Expiry(ts, e.TTL)}
	}
	h := held{group: c.open.N, reply: Reply{Handle: req.Handle, Results: make([]WriteResult, len(req.Entries))}, g: c.open, recs: make([]int, len(req.Entries))}
	written := 0
	for i, ch := range changes {
		if !keep[i] {
			h.recs[i] = -1 // dropped by a stage
			continue
		}
		// The version follows the key's state now: the overlay holds the
		// request's own earlier entries, and dropped ones wrote nothing.
		r, _, _ := c.lookup(req, i, now)
		ch.Version = r.Value.Version + 1
		h.recs[i] = c.write(ch, nil)
		written++
	}
	if written == 0 {
		c.release(h) // the stages dropped every entry: nothing to wait for
		return
	}
	c.hold(h)
}

// matches says a key in state r meets a compare-and-set's expectation: 0
// for an absent key, else its exact version.
func matches(r kv.Read, expected uint64) bool {
	if expected == 0 {
		return !r.Found
	}
	return r.Found && r.Value.Version == expected
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// single checks a single-key request's key and reads its state; answered
// means the request already has its reply.
func (c *Core) single(now time.Time, req *Request) (r kv.Read, answered bool) {
	if err := c.check(req.Key); err != nil {
		c.fail(req, err)
		return r, true
	}
	r, _, ok := c.lookup(req, 0, now)
	if !ok {
		c.fail(req, errUnread)
		return r, true
	}
	return r, false
}

func (c *Core) remove(now time.Time, req *Request) {
	cur, answered := c.single(now, req)
	if answered {
		return
	}
	if !cur.Found {
		// Nothing to remove; like a Get, wait for a pending removal to be durable.
		c.replyObserved(now, req, [][]byte{req.Key}, Reply{})
		return
	}
	ch := c.next(req.Key, cur, now)
	ch.Remove = true
	i := c.write(ch, nil)
	c.hold(held{group: c.open.N, reply: Reply{Handle: req.Handle, Read: kv.Read{Found: true}, Results: make([]WriteResult, 1)}, g: c.open, recs: []int{i}})
}

// increment adds req.Delta to the key's decimal int64 value (absent: 0). The
// key keeps its expiry unless the request sets a TTL.
func (c *Core) increment(now time.Time, req *Request) {
	cur, answered := c.single(now, req)
	if answered {
		return
	}
	var n int64
	if cur.Found {
		var err error
		// Strict, as Redis's INCR: the one form AppendInt writes (no '+',
		// no leading zero, no "-0", no spaces).
		if n, err = strconv.ParseInt(string(cur.Value.Data), 10, 64); err != nil || strconv.FormatInt(n, 10) != string(cur.Value.Data) {
			c.replyObserved(now, req, [][]byte{req.Key}, Reply{Err: &NotIntegerError{Key: req.Key, Reason: fmt.Sprintf("its value %.32q is not a decimal int64", cur.Value.Data)}})
			return
		}
	}
	sum := n + req.Delta
	if (req.Delta > 0 && sum < n) || (req.Delta < 0 && sum > n) {
		c.replyObserved(now, req, [][]byte{req.Key}, Reply{Err: &NotIntegerError{Key: req.Key, Reason: fmt.Sprintf("%d + %d overflows int64", n, req.Delta)}})
		return
	}
	ch := c.next(req.Key, cur, now)
	ch.Value = strconv.AppendInt(nil, sum, 10)
	switch {
	case req.TTL > 0:
		ch.ExpiresAt = clock.Expiry(ch.Timestamp, req.TTL)
	case cur.Found:
		ch.ExpiresAt = cur.Value.ExpiresAt
	}
	i := c.write(ch, nil)
	c.hold(held{group: c.open.N, reply: Reply{Handle: req.Handle, Counter: sum, Results: make([]WriteResult, 1)}, g: c.open, recs: []int{i}})
}
