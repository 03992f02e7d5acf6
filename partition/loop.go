package partition

import (
	"context"
	"time"

	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/wal"
)

// loop is what the partition's goroutine owns beside the core: the
// appender and its flusher, the restore, the ingest consumer, the timer. It
// hands its inputs to the driver (core.Driver), which carries out the
// core's Readys through the loop's effects (effects.go).
type loop struct {
	p        *Partition
	core     *core.Core
	d        *core.Driver
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
	l.p = p
	l.core = core.New(p.cfg.Config)
	l.d = core.NewDriver(l.core, timedStore{p}, p.values, l, false)
	l.appended = make(chan appendResult)
	l.restored = make(chan restoreResult, 1)
	l.wake = time.NewTimer(time.Hour)
	l.wake.Stop()
}

// run is the partition's goroutine: a thin select loop that owns the
// channels and the time and hands each input to the driver. When the core
// is busy (its window or its groups are full) the inbox case is set to nil:
// intake pauses, nothing else changes.
func (p *Partition) run() {
	defer close(p.done)
	l := &p.loop
	closing := p.closing
	l.d.Start()
	for l.core.State() != core.Stopped {
		inbox := p.inbox
		if l.core.Busy() {
			inbox = nil
		}
		select {
		case req := <-inbox:
			l.d.Step(&req.Request)
			if req.Handle == nil {
				// An ingest delivery has no reply: its bytes moved into the
				// core's groups, bounded by the window and the group size.
				p.refund(req)
			}
		case res := <-l.appended:
			p.metrics.appended(res)
			l.d.Appended(res.n, res.offsets, res.err)
		case r := <-l.restored:
			l.phases.restored = time.Now()
			l.app = r.app
			if r.app != nil {
				l.startFlusher()
			}
			l.d.Restored(r.r)
		case <-l.wake.C:
			l.d.Tick()
		case <-closing:
			closing = nil
			l.d.Close()
		case <-p.ctx.Done():
			l.d.Kill()
		}
	}
	l.shutdown()
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
			p.refund(req)
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
	if err := p.cfg.Store.Close(); err != nil {
		p.cfg.Log.Error().Err(err).Msg("closing store")
	}
	p.publishStopped()
}
