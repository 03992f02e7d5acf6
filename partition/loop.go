package partition

import (
	"context"
	"time"

	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/wal"
)

// loop is what the partition's goroutine owns beside the core: the
// appender and its flusher, the restore, the ingest consumer, the timer.
type loop struct {
	p        *Partition
	core     *core.Core
	app      wal.Appender
	toFlush  chan *core.Group // to the flusher; nil while no appender serves
	appended chan appendResult
	restored chan restoreResult
	wake     *time.Timer
	// stopIngest stops the ingest consumer of the serving session.
	stopIngest context.CancelFunc
	// restores counts the restores started: the first may skip the lease wait.
	restores int
	phases   phases // the restore's timing, for its log lines (phases.go)
}

// appendResult is the flusher's answer for one group.
type appendResult struct {
	n       uint64
	offsets []int64
	err     error
	took    time.Duration
	records int
	dlq     int
}

// restoreResult is the end of a restore: a fresh appender and the core's
// input. app is nil when the restore found the partition deposed.
type restoreResult struct {
	app wal.Appender
	r   core.Restore
}

func (l *loop) init(p *Partition) {
	cfg := p.cfg
	l.p = p
	l.core = core.New(core.Config{ID: cfg.ID, Range: cfg.Range, Slots: cfg.Slots, Epoch: cfg.Epoch, Lease: cfg.Lease, LeaseWait: cfg.LeaseWait,
		WindowSize: cfg.WindowSize, MaxGroupBytes: cfg.MaxGroupBytes, Stages: cfg.Stages})
	l.appended = make(chan appendResult)
	l.restored = make(chan restoreResult, 1)
	l.wake = time.NewTimer(time.Hour)
	l.wake.Stop()
}

// run is the partition's goroutine: a thin select loop around the core. When
// the core is busy (its window or its groups are full) the inbox case is set
// to nil: intake pauses, nothing else changes.
func (p *Partition) run() {
	defer close(p.done)
	l := &p.loop
	closing := p.closing
	l.carry(l.core.Ready())
	for l.core.State() != core.Stopped {
		inbox := p.inbox
		if l.core.Busy() {
			inbox = nil
		}
		select {
		case req := <-inbox:
			l.step(req)
		case res := <-l.appended:
			p.metrics.appended(res)
			l.core.Appended(time.Now(), res.n, res.offsets, res.err)
		case r := <-l.restored:
			l.phases.restored = time.Now()
			l.app = r.app
			if r.app != nil {
				l.startFlusher()
			}
			l.core.Restored(time.Now(), r.r)
		case <-l.wake.C:
			l.core.Tick(time.Now())
		case <-closing:
			closing = nil
			l.core.Close(time.Now())
		case <-p.ctx.Done():
			l.core.Kill(time.Now())
		}
		l.carry(l.core.Ready())
	}
	l.shutdown()
}

// carry carries out a Ready, in the order of its fields, and the Readys its
// store writes lead to.
func (l *loop) carry(rd core.Ready) {
	for {
		if rd.StopIngest {
			l.stopIngesting()
		}
		for _, r := range rd.Replies {
			req := r.Handle.(*request)
			l.p.release(req)
			req.reply <- r
		}
		if rd.Append != nil {
			l.toFlush <- rd.Append // buffered 1 and the flusher is idle: never blocks
		}
		var failed error
		for _, g := range rd.Apply {
			// After a failed store write the later groups are not written:
			// the store's offsets would claim the failed one.
			if failed == nil {
				failed = l.apply(g)
			}
			l.core.Applied(time.Now(), g.N, failed)
		}
		if rd.Restore {
			l.startRestore()
		}
		if rd.StartIngest != nil {
			l.startIngest(rd.StartIngest)
		}
		if !rd.WakeAt.IsZero() {
			l.wake.Reset(time.Until(rd.WakeAt))
		}
		l.publish()
		if rd.Stop || len(rd.Apply) == 0 {
			return
		}
		rd = l.core.Ready()
	}
}

// publish makes the core's state visible to callers.
func (l *loop) publish() {
	p := l.p
	switch l.core.State() {
	case core.Serving:
		if !p.serving.Load() {
			p.progress.Store(100)
			p.serving.Store(true)
			l.servingNow()
		}
	case core.Deposed:
		if p.deposed.Load() == nil {
			err := l.core.Deposed()
			p.deposed.Store(&err)
			p.serving.Store(false)
			p.cfg.Log.Warn().Err(err).Msg("partition deposed: not serving")
		}
	default:
		p.serving.Store(false)
	}
	p.applies.Store(l.core.Applies())
	p.metrics.observe(p)
}

// apply writes a committed group to the store (changes and offsets in one
// write), keeps the version cache exact, and publishes how far the store
// reaches. Until then the core's overlay answers for the group's keys.
func (l *loop) apply(g *core.Group) error {
	p := l.p
	b := g.Batch()
	start := time.Now()
	b.SyncedAt = start.UnixMilli() // the slots' only writer: behind the log by its groups in flight only
	err := p.cfg.Store.Apply(b)
	p.metrics.applied(time.Since(start))
	p.versions.applied(b.Changes)
	if err == nil {
		p.view.publish(b.Offsets, b.Ingest)
	}
	return err
}

// startFlusher starts the goroutine that appends the core's groups with the
// current appender, one at a time.
func (l *loop) startFlusher() {
	p := l.p
	in := make(chan *core.Group, 1)
	l.toFlush = in
	app := l.app
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for g := range in {
			start := time.Now()
			offsets, err := app.Append(p.ctx, &g.Group)
			res := appendResult{n: g.N, offsets: offsets, err: err, took: time.Since(start), records: len(g.Records), dlq: len(g.DeadLetters)}
			select {
			case l.appended <- res:
			case <-p.ctx.Done():
				return
			}
		}
	}()
}

// stopFlusher retires the flusher of a serving session (it ends after the
// group it is appending, whose result the core then ignores).
func (l *loop) stopFlusher() {
	if l.toFlush != nil {
		close(l.toFlush)
		l.toFlush = nil
	}
}

// shutdown ends the loop: the flusher, consumer and restore stop, queued
// requests fail (never taken: not applied), the appender and the store close.
func (l *loop) shutdown() {
	p := l.p
	l.stopIngesting()
	l.stopFlusher()
	p.stop()
	for {
		select {
		case req := <-p.inbox:
			p.release(req)
			if req.reply != nil {
				req.reply <- core.Reply{Handle: req, Err: ErrStopped}
			}
			continue
		default:
		}
		break
	}
	p.wg.Wait()
	select {
	case r := <-l.restored: // a restore that finished as we stopped
		if r.app != nil && r.app != l.app {
			r.app.Close()
		}
	default:
	}
	if l.app != nil {
		l.app.Close()
	}
	p.serving.Store(false)
	if err := p.cfg.Store.Close(); err != nil {
		p.cfg.Log.Error().Err(err).Msg("closing store")
	}
}
