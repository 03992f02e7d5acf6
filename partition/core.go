package partition

import (
	"context"
	"time"

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
	// applied remembers recent store writes, to check prefetched values.
	applied applied
	// session numbers the serving sessions (one flusher each): an append
	// result from an earlier one is stale, its requests already failed.
	session uint64
	// proven is when ownership was last proven: the start of the last
	// transaction that committed, or of the fencing before serving.
	proven time.Time
}

func (s *loopState) init(p *Partition) {
	s.p = p
	s.monitor = pipeline.NewLineMonitor(p.cfg.WindowSize)
	s.overlay = make(map[string]pending)
	s.applied.last = make(map[string]uint64)
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

// committed records that the group in flight committed and releases the
// replies that waited for it: the group is durable in Kafka, so they are true
// before the store has it. The loop then starts the next transaction, and only
// then applies this group (apply): the store write delays neither.
func (s *loopState) committed(res appendResult) {
	g := res.g
	s.inflight = nil
	s.p.metrics.appended(g, res.took)
	s.proven = res.start // ownership held when this transaction began: it committed
	s.monitor.Commit(g.n)
}

// apply writes a committed group to the store (changes and offsets in one
// write) and trims the overlay. Until then the overlay answers for its keys,
// and SESSION reads wait for the offsets it publishes.
func (s *loopState) apply(g *group) error {
	batch := g.batch(s.p.cfg.Topic)
	start := time.Now()
	err := s.p.cfg.Store.Apply(batch)
	s.p.metrics.applied(time.Since(start))
	s.applied.note(s.p, g.changes)
	for _, c := range g.changes {
		if pv, ok := s.overlay[string(c.Key)]; ok && pv.group <= g.n {
			delete(s.overlay, string(c.Key))
		}
	}
	if err == nil {
		s.p.view.publish(batch.Offsets)
	}
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
	s.applied.reset(p)
	if offs, err := p.cfg.Store.Offsets(); err == nil {
		p.view.publish(offs)
	}
	s.startIngest()
	s.toFlush = make(chan *group, 1)
	p.wg.Add(1)
	s.session++
	go p.flusher(r.app, s.toFlush, s.appended, s.session)
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
func (p *Partition) flusher(app Appender, in <-chan *group, out chan<- appendResult, session uint64) {
	defer p.wg.Done()
	for g := range in {
		start := time.Now()
		err := app.Append(p.ctx, g.records())
		select {
		case out <- appendResult{g: g, err: err, start: start, took: time.Since(start), session: session}:
		case <-p.ctx.Done():
			return
		}
	}
}

func resultOf(slot int32, offset int64, c store.Change) WriteResult {
	return WriteResult{Version: c.Version, Timestamp: c.Timestamp, Slot: slot, Offset: offset}
}
