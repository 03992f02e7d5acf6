package core

import (
	"errors"
	"time"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/pipeline"
)

// ingest runs a delivery of ingest records through the same pipeline as a
// gRPC write. The next offset of each slot goes, as a mark, into the same
// group as the changes (and into the same store batch after commit), so every
// record is applied exactly once across crashes and moves. A record that
// cannot be applied goes to the DLQ in that group too.
func (c *Core) ingest(now time.Time, req *Request) {
	if req.Gen != c.ingestGen || !c.ingesting {
		return // from a consumer retired by a re-sync: its records come again
	}
	for i, r := range req.Ingest {
		if !c.cfg.Range.Contains(r.Slot) || r.Offset < c.ingestPos[r.Slot] {
			continue
		}
		src := kv.Source{Slot: r.Slot, Offset: r.Offset}
		isolate := r.Offset < c.quarantine[r.Slot]
		if isolate && !c.open.empty() {
			c.seal()
		}
		if why, ok := c.poisoned[src]; ok {
			c.open.deadLetter(r, why)
		} else if err := c.ingestOne(now, req, i); err != nil {
			if !isInvalid(err) {
				c.breakdown(now, err)
				return
			}
			c.open.deadLetter(r, err.Error())
		}
		c.ingestPos[r.Slot] = r.Offset + 1
		c.open.consumed(r.Slot, r.Offset+1)
		if isolate {
			c.open.isolated = &src
			c.seal()
		}
	}
}

// seal closes the open group: it waits behind the one in flight.
func (c *Core) seal() {
	c.sealed = append(c.sealed, c.open)
	c.open = &Group{N: c.open.N + 1}
}

// ingestOne applies one record; an error (wrapping kv.ErrInvalid) sends it to
// the DLQ.
func (c *Core) ingestOne(now time.Time, req *Request, i int) error {
	r := req.Ingest[i]
	if r.Err != nil {
		return r.Err
	}
	if err := kv.ValidateIngest(r); err != nil {
		return err
	}
	if slot := keyspace.Slot(r.Key, c.cfg.Slots); !c.cfg.Range.Contains(slot) {
		// Produced with another partitioner (librdkafka's default is CRC32, not
		// murmur2): hand it, in this same group, to the slot that owns the key.
		// Its owner consumes it from there, exactly once.
		c.open.forward(slot, r)
		return nil
	}
	cur, _, ok := c.lookup(req, i, now)
	if !ok {
		return errUnread
	}
	if r.Remove && !cur.Found {
		return nil // nothing to remove; the mark still records the offset
	}
	ch := c.next(r.Key, cur, now)
	if r.Remove {
		ch.Remove = true
	} else {
		w, keep, err := pipeline.Run(c.cfg.Stages, pipeline.Write{Key: r.Key, Value: r.Value, Source: "ingest", Timestamp: ch.Timestamp})
		if err != nil || !keep {
			return err // rejected: to the DLQ; dropped: the mark still records the offset
		}
		ch.Value, ch.ExpiresAt = nonNil(w.Value), clock.Expiry(ch.Timestamp, r.TTL)
	}
	c.write(ch, &kv.Source{Slot: r.Slot, Offset: r.Offset})
	return nil
}

// isInvalid reports errors that send an ingest record to the DLQ.
func isInvalid(err error) bool { return errors.Is(err, kv.ErrInvalid) }
