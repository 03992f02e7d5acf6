package partition

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

// The requests the loop serves: each computes on the speculative view, adds
// its change records to the open group and holds its reply in the line
// monitor until the group that makes it true has committed.

func (s *loopState) upsert(req *request) error {
	if err := pipeline.ValidateBatch(req.entries); err != nil {
		req.reply <- reply{err: err}
		return nil
	}
	for _, e := range req.entries {
		if err := s.owns(e.Key); err != nil {
			req.reply <- reply{err: err}
			return nil
		}
	}
	// Compare-and-set: every expectation holds, or nothing is written.
	for i, e := range req.entries {
		if e.Expected == nil {
			continue
		}
		cur, found, err := s.lookup(req, i)
		if err != nil {
			req.reply <- reply{err: err}
			return err
		}
		if !found {
			cur.Version = 0
		}
		if cur.Version != *e.Expected {
			// A refusal is a read of the key: like a Get, it must not rest on
			// a version that is not durable yet (its group could still fail).
			s.replyObserved(req, e.Key, reply{err: &VersionMismatchError{Key: e.Key, Expected: *e.Expected, Current: cur.Version}})
			return nil
		}
	}
	// The pipeline's stages run on every entry before anything is written, so
	// a rejection refuses the whole request.
	stamps := make([]uint64, len(req.entries))
	values := make([][]byte, len(req.entries))
	for i, e := range req.entries {
		stamps[i] = s.clock.Now()
		w, keep, err := pipeline.Run(s.p.cfg.Stages, pipeline.Write{Key: e.Key, Value: e.Value, Source: "grpc", Timestamp: stamps[i]})
		if err != nil {
			req.reply <- reply{err: err}
			return nil
		}
		if keep {
			values[i] = w.Value
			if values[i] == nil {
				values[i] = []byte{}
			}
		}
	}
	g := s.open
	first := len(g.recs)
	for i, e := range req.entries {
		if values[i] == nil {
			continue // dropped by a stage
		}
		cur, found, err := s.lookup(req, i)
		if err != nil {
			// Part of this request is in the open group: the loop drops it all.
			req.reply <- reply{err: err}
			return err
		}
		c := s.next(e.Key, cur, found)
		c.Timestamp = stamps[i]
		c.Value, c.ExpiresAt = values[i], expiry(c.Timestamp, e.TTL)
		s.write(c)
	}
	recs := g.recs[first:]
	release := func(err error) {
		if err != nil {
			req.reply <- reply{err: err}
			return
		}
		res := make([]WriteResult, len(values))
		j := 0
		for i := range values {
			if values[i] == nil {
				res[i] = WriteResult{Offset: -1} // dropped by the pipeline
				continue
			}
			res[i] = resultOf(recs[j].Partition, recs[j].Offset, g.changes[first+j])
			j++
		}
		req.reply <- reply{results: res}
	}
	if len(recs) == 0 {
		release(nil) // the pipeline dropped every entry: nothing to wait for
		return nil
	}
	s.monitor.Hold(g.n, release)
	return nil
}

// current checks a single-key request's key and reads its speculative value.
// answered means the request already has its reply (a bad key, or the store
// failing: err, and the partition must re-sync).
func (s *loopState) current(req *request) (v store.Value, found, answered bool, err error) {
	if err := s.check(req.key); err != nil {
		req.reply <- reply{err: err}
		return v, false, true, nil
	}
	if v, found, err = s.lookup(req, 0); err != nil {
		req.reply <- reply{err: err}
		return v, false, true, err
	}
	return v, found, false, nil
}

func (s *loopState) get(req *request) error {
	v, found, answered, err := s.current(req)
	if !answered {
		s.replyRead(req, reply{value: v, found: found})
	}
	return err
}

func (s *loopState) remove(req *request) error {
	cur, found, answered, err := s.current(req)
	if answered {
		return err
	}
	if !found {
		// Nothing to remove; like a Get, wait for a pending removal to be durable.
		s.replyRead(req, reply{})
		return nil
	}
	g := s.open
	c := s.next(req.key, cur, found)
	c.Remove = true
	s.write(c)
	i := len(g.recs) - 1
	rec := g.recs[i]
	s.monitor.Hold(g.n, func(err error) {
		if err != nil {
			req.reply <- reply{err: err}
			return
		}
		req.reply <- reply{found: true, results: []WriteResult{resultOf(rec.Partition, rec.Offset, g.changes[i])}}
	})
	return nil
}

// increment adds req.delta to the key's decimal int64 value.
func (s *loopState) increment(req *request) error {
	cur, found, answered, err := s.current(req)
	if answered {
		return err
	}
	var n int64
	if found {
		if n, err = strconv.ParseInt(string(cur.Data), 10, 64); err != nil {
			s.replyRead(req, reply{err: &NotIntegerError{Key: req.key, Reason: fmt.Sprintf("its value %.32q is not a decimal int64", cur.Data)}})
			return nil
		}
	}
	sum := n + req.delta
	if (req.delta > 0 && sum < n) || (req.delta < 0 && sum > n) {
		s.replyRead(req, reply{err: &NotIntegerError{Key: req.key, Reason: fmt.Sprintf("%d + %d overflows int64", n, req.delta)}})
		return nil
	}
	g := s.open
	c := s.next(req.key, cur, found)
	c.Value = strconv.AppendInt(nil, sum, 10)
	s.write(c)
	i := len(g.recs) - 1
	s.monitor.Hold(g.n, func(err error) {
		if err != nil {
			req.reply <- reply{err: err}
			return
		}
		req.reply <- reply{counter: sum, results: []WriteResult{resultOf(g.recs[i].Partition, g.recs[i].Offset, g.changes[i])}}
	})
	return nil
}

// replyRead answers a read of req.key.
func (s *loopState) replyRead(req *request, r reply) { s.replyObserved(req, req.key, r) }

// replyObserved answers a request whose reply rests on what it read of key: a
// read, or a refusal (a compare-and-set whose expected version is not the
// current one, an increment of a value that is not an integer). A value from
// the store is committed and durable: answer now, within the lease. A value
// from the overlay waits until everything before this request is durable, so
// a reply never rests on what a failed append or a crash could take back; if
// that append fails, so does the request.
func (s *loopState) replyObserved(req *request, key []byte, r reply) {
	_, speculative := s.overlay[string(key)]
	if !speculative && s.leased() {
		req.reply <- r
		return
	}
	if s.open.empty() && s.inflight == nil {
		// Nothing is being written: commit a heartbeat to prove ownership. (A
		// transaction already in flight proves it too: it can only commit if no
		// newer owner fenced it before its commit, which comes after this read.)
		s.beat()
	}
	s.monitor.Hold(s.lastGroup(), func(err error) {
		if err != nil {
			r = reply{err: err}
		}
		req.reply <- r
	})
}

// leased reports whether a commit proved ownership within the lease.
func (s *loopState) leased() bool {
	lease := s.p.cfg.Lease
	return lease <= 0 || time.Since(s.proven) < lease
}

// beat adds a heartbeat to the open group: its commit proves ownership.
func (s *loopState) beat() {
	cfg := &s.p.cfg
	s.open.addExtra(changelog.NewHeartbeat(cfg.ID, cfg.Epoch).Record(cfg.Topic, cfg.Range.From))
}

// write adds one change to the open group and the overlay.
func (s *loopState) write(c changelog.Change) {
	cfg := &s.p.cfg
	c.Epoch = cfg.Epoch
	sc := store.Change{Key: c.Key, Value: c.Value, Remove: c.Remove, Version: c.Version, Timestamp: c.Timestamp, ExpiresAt: c.ExpiresAt}
	s.open.add(c.Record(cfg.Topic, keyspace.Slot(c.Key, cfg.Slots)), sc)
	s.overlay[string(c.Key)] = pending{v: sc.Val(), removed: c.Remove, group: s.open.n}
}

// next computes the change that writes value to key (or removes it).
func (s *loopState) next(key []byte, cur store.Value, found bool) changelog.Change {
	c := changelog.Change{Key: key, Version: 1, Timestamp: s.clock.Now()}
	if found {
		c.Version = cur.Version + 1
	}
	return c
}

// expiry turns a TTL into an absolute expiry (unix ms) from the write's stamp.
func expiry(ts uint64, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	return uint64(pipeline.WallTime(ts).Add(ttl).UnixMilli())
}

// check validates a single-key request's key.
func (s *loopState) check(key []byte) error {
	if err := pipeline.ValidateKey(key); err != nil {
		return err
	}
	return s.owns(key)
}

func (s *loopState) owns(key []byte) error {
	if !s.p.cfg.Range.Contains(keyspace.Slot(key, s.p.cfg.Slots)) {
		return ErrWrongPartition
	}
	return nil
}
