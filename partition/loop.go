package partition

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// appendResult is the flusher's answer for one group.
type appendResult struct {
	g    *group
	err  error
	took time.Duration
}

// syncResult is the end of a restore: a fresh appender and the clock floor.
type syncResult struct {
	app    Appender
	clock  uint64
	ingest map[int32]int64 // next ingest offset per slot
}

// run is the partition's goroutine: a thin select loop around the core. When
// the line monitor's window or the open group is full, the inbox case is set
// to nil: intake pauses, nothing else changes.
func (p *Partition) run() {
	defer close(p.done)
	s := &p.state
	syncDone := p.startSync()
	for {
		inbox := p.inbox
		if syncDone != nil || s.full() {
			inbox = nil
		}
		select {
		case req := <-inbox:
			if err := s.step(req); err != nil {
				p.cfg.Log.Error().Err(err).Msg("reading the store failed; failing pending requests and re-syncing")
				s.failPending(fmt.Errorf("%w: %v", ErrAppendFailed, err))
				syncDone = p.startSync()
				continue
			}
			s.flush()
		case res := <-s.appended:
			if res.err != nil {
				p.cfg.Log.Error().Err(res.err).Uint64("group", res.g.n).Msg("changelog append failed; failing pending requests and re-syncing")
				s.failPending(fmt.Errorf("%w: %v", ErrAppendFailed, res.err))
				syncDone = p.startSync()
				continue
			}
			if err := s.committed(res); err != nil {
				p.cfg.Log.Error().Err(err).Msg("applying committed changes to the store failed; re-syncing")
				s.failPending(fmt.Errorf("%w: %v", ErrAppendFailed, err))
				syncDone = p.startSync()
				continue
			}
			s.flush()
		case r := <-syncDone:
			syncDone = nil
			s.serve(r)
		case <-p.ctx.Done():
			s.failPending(ErrStopped)
			p.drainInbox(ErrStopped)
			s.stopFlusher()
			p.wg.Wait()
			if s.app != nil {
				s.app.Close()
			}
			if syncDone != nil {
				select {
				case r := <-syncDone: // a restore that finished as we stopped
					r.app.Close()
				default:
				}
			}
			if err := p.cfg.Store.Close(); err != nil {
				p.cfg.Log.Error().Err(err).Msg("closing store")
			}
			return
		}
		if syncDone != nil {
			// Restoring: answer queued requests now rather than let them wait.
			p.drainInbox(p.unavailable())
		}
		p.metrics.observe(p)
	}
}

// startSync stops serving, retires the appender and restores in the
// background: fence with a new appender, then replay the changelog.
func (p *Partition) startSync() chan syncResult {
	s := &p.state
	p.serving.Store(false)
	s.stopFlusher()
	old := s.app
	s.app = nil
	out := make(chan syncResult, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if old != nil {
			old.Close()
		}
		for attempt := 0; ; attempt++ {
			r, err := p.sync(p.ctx)
			if err == nil {
				out <- r
				return
			}
			if errors.Is(p.ctx.Err(), context.Canceled) {
				return
			}
			wait := min(time.Duration(1<<min(attempt, 5))*200*time.Millisecond, 5*time.Second)
			p.cfg.Log.Error().Err(err).Dur("retry_in", wait).Msg("restore failed")
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
				return
			}
		}
	}()
	return out
}

func (p *Partition) drainInbox(err error) {
	for {
		select {
		case req := <-p.inbox:
			req.reply <- reply{err: err}
		default:
			return
		}
	}
}
