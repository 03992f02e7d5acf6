package partition

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

// loopState is everything the partition goroutine owns. No locks: nothing
// else touches it.
type loopState struct {
	p       *Partition
	clock   *pipeline.Clock
	monitor *pipeline.LineMonitor
	// overlay is the speculative view: every key written by a group that is not
	// yet applied to the store. Reads look here first, then in the store.
	overlay map[string]pending
	// open collects the next group's records while inflight is appended.
	open     *group
	inflight *group
	app      Appender
	toFlush  chan *group // to the flusher goroutine; nil while not serving
	appended chan appendResult
	// ingestPos is the next ingest offset per slot the loop has taken (not
	// yet necessarily committed); ingestGen numbers the consumer sessions.
	ingestPos  map[int32]int64
	ingestGen  uint64
	stopIngest context.CancelFunc
	// deposed is set once a restore found that a newer owner has the
	// partition: it never serves again.
	deposed error
	// proven is when ownership was last proven: the start of the last
	// transaction that committed, or of the fencing before serving.
	proven time.Time
}

func (s *loopState) init(p *Partition) {
	s.p = p
	s.monitor = pipeline.NewLineMonitor(p.cfg.WindowSize)
	s.overlay = make(map[string]pending)
	s.open = &group{n: 1}
	s.appended = make(chan appendResult)
}

// full says intake must pause: the window or the open group is at its bound.
func (s *loopState) full() bool {
	return s.monitor.Full() || s.open.bytes >= s.p.cfg.MaxGroupBytes
}

// step runs one request through the pipeline: validate, stamp, compute on the
// speculative view, add change records to the open group, hold the reply. An
// error is the store failing to read: the partition must re-sync.
func (s *loopState) step(req *request) error {
	switch req.op {
	case opUpsert:
		return s.upsert(req)
	case opGet:
		return s.get(req)
	case opIngest:
		return s.ingest(req)
	case opIncrement:
		return s.increment(req)
	default:
		return s.remove(req)
	}
}

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
	for _, e := range req.entries {
		if e.Expected == nil {
			continue
		}
		cur, found, err := s.lookup(e.Key)
		if err != nil {
			req.reply <- reply{err: err}
			return err
		}
		if !found {
			cur.Version = 0
		}
		if cur.Version != *e.Expected {
			req.reply <- reply{err: &VersionMismatchError{Key: e.Key, Expected: *e.Expected, Current: cur.Version}}
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
		cur, found, err := s.lookup(e.Key)
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

func (s *loopState) get(req *request) error {
	if err := s.check(req.key); err != nil {
		req.reply <- reply{err: err}
		return nil
	}
	v, found, err := s.lookup(req.key)
	if err != nil {
		req.reply <- reply{err: err}
		return err
	}
	s.replyRead(req, reply{value: v, found: found})
	return nil
}

func (s *loopState) remove(req *request) error {
	if err := s.check(req.key); err != nil {
		req.reply <- reply{err: err}
		return nil
	}
	cur, found, err := s.lookup(req.key)
	if err != nil {
		req.reply <- reply{err: err}
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
	if err := s.check(req.key); err != nil {
		req.reply <- reply{err: err}
		return nil
	}
	cur, found, err := s.lookup(req.key)
	if err != nil {
		req.reply <- reply{err: err}
		return err
	}
	var n int64
	if found {
		if n, err = strconv.ParseInt(string(cur.Data), 10, 64); err != nil {
			req.reply <- reply{err: &NotIntegerError{Key: req.key, Reason: fmt.Sprintf("its value %.32q is not a decimal int64", cur.Data)}}
			return nil
		}
	}
	sum := n + req.delta
	if (req.delta > 0 && sum < n) || (req.delta < 0 && sum > n) {
		req.reply <- reply{err: &NotIntegerError{Key: req.key, Reason: fmt.Sprintf("%d + %d overflows int64", n, req.delta)}}
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

// replyRead answers a read. A value from the store is committed and durable:
// answer now. A value from the overlay waits until everything before this read
// is durable, so a read never returns what a crash could take back.
func (s *loopState) replyRead(req *request, r reply) {
	_, speculative := s.overlay[string(req.key)]
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

// lookup reads the speculative view: overlay first, then the store. An
// expired value is absent.
func (s *loopState) lookup(key []byte) (store.Value, bool, error) {
	var (
		v     store.Value
		found bool
		err   error
	)
	if pv, ok := s.overlay[string(key)]; ok {
		v, found = pv.v, !pv.removed
	} else if v, found, err = s.p.cfg.Store.Get(key); err != nil {
		return store.Value{}, false, err
	}
	if found && v.Expired(time.Now()) {
		return store.Value{}, false, nil
	}
	return v, found, nil
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

// lastGroup is the newest group holding a write: the one a read must wait for.
func (s *loopState) lastGroup() uint64 {
	if s.open.empty() && s.inflight != nil {
		return s.inflight.n
	}
	return s.open.n
}

// flush hands the open group to the flusher when none is in flight: group
// commit, the next group builds while one is appended.
func (s *loopState) flush() {
	if s.inflight != nil || s.open.empty() || s.toFlush == nil {
		return
	}
	s.inflight = s.open
	s.inflight.mark(s.p.cfg.Topic, s.p.cfg.Epoch)
	s.open = &group{n: s.inflight.n + 1}
	s.toFlush <- s.inflight // buffered 1 and the flusher is idle: never blocks
}

// committed applies a committed group to the store (changes and offsets in one
// write), trims the overlay and releases the replies that waited for it.
func (s *loopState) committed(res appendResult) error {
	g := res.g
	s.inflight = nil
	s.p.metrics.appended(g, res.took)
	s.proven = res.start // ownership held when this transaction began: it committed
	batch := g.batch(s.p.cfg.Topic)
	err := s.p.cfg.Store.Apply(batch)
	for _, c := range g.changes {
		if pv, ok := s.overlay[string(c.Key)]; ok && pv.group <= g.n {
			delete(s.overlay, string(c.Key))
		}
	}
	if err == nil {
		s.p.view.publish(batch.Offsets)
	}
	// The group is durable in Kafka whatever the store said: its replies are true.
	s.monitor.Commit(g.n)
	return err
}

// failPending fails every reply not yet released and drops the speculative
// view: replies waiting on the group in flight get inflightErr, the others
// (never appended) openErr.
func (s *loopState) failPending(inflightErr, openErr error) {
	n := s.open.n
	if s.inflight != nil {
		n = s.inflight.n
		s.monitor.FailAll(func(group uint64) error {
			if group <= n {
				return inflightErr
			}
			return openErr
		})
	} else {
		s.monitor.FailAll(func(uint64) error { return openErr })
	}
	s.overlay = make(map[string]pending)
	s.open = &group{n: max(n, s.open.n) + 1}
	s.inflight = nil
}

// failOpen fails the requests of the open group, which was never appended,
// and drops it from the speculative view.
func (s *loopState) failOpen(err error) {
	if s.inflight == nil {
		s.failPending(err, err)
		return
	}
	n := s.inflight.n
	s.monitor.FailFrom(n+1, err)
	for k, pv := range s.overlay {
		if pv.group > n {
			delete(s.overlay, k) // the open group's writes; earlier ones are in flight
		}
	}
	s.open = &group{n: n + 1}
}

// serve starts serving after a restore with its fresh appender.
func (s *loopState) serve(r syncResult) {
	p := s.p
	s.app = r.app
	s.proven = r.fenced
	s.clock = pipeline.NewClock(r.clock)
	s.ingestPos = r.ingest
	if offs, err := p.cfg.Store.Offsets(); err == nil {
		p.view.publish(offs)
	}
	s.startIngest()
	s.toFlush = make(chan *group, 1)
	p.wg.Add(1)
	go p.flusher(r.app, s.toFlush, s.appended)
	p.progress.Store(100)
	p.serving.Store(true)
	p.cfg.Log.Info().Msg("serving")
}

// stopFlusher retires the flusher and the ingest consumer of a serving session.
func (s *loopState) stopFlusher() {
	if s.toFlush != nil {
		close(s.toFlush)
		s.toFlush = nil
	}
	if s.stopIngest != nil {
		s.stopIngest()
		s.stopIngest = nil
	}
}

// flusher appends groups one at a time and reports each result to the loop.
func (p *Partition) flusher(app Appender, in <-chan *group, out chan<- appendResult) {
	defer p.wg.Done()
	for g := range in {
		start := time.Now()
		err := app.Append(p.ctx, g.records())
		select {
		case out <- appendResult{g: g, err: err, start: start, took: time.Since(start)}:
		case <-p.ctx.Done():
			return
		}
	}
}

func resultOf(slot int32, offset int64, c store.Change) WriteResult {
	return WriteResult{Version: c.Version, Timestamp: c.Timestamp, Slot: slot, Offset: offset}
}
