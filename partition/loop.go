package partition

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/changelog"
)

// appendResult is the flusher's answer for one group.
type appendResult struct {
	g       *group
	err     error
	start   time.Time
	took    time.Duration
	session uint64 // the serving session whose flusher appended g
}

// syncResult is the end of a restore: a fresh appender and where the
// partition's clock and ingest start. err is set only for ErrDeposed.
type syncResult struct {
	app    Appender
	fenced time.Time // when the fencing began
	clock  uint64
	ingest map[int32]int64 // next ingest offset per slot
	err    error
}

// drainTimeout bounds how long Close waits for the group in flight.
const drainTimeout = 10 * time.Second

// run is the partition's goroutine: a thin select loop around the core. When
// the line monitor's window or the open group is full, the inbox case is set
// to nil: intake pauses, nothing else changes.
func (p *Partition) run() {
	defer close(p.done)
	s := &p.state
	syncing := p.startSync()
	var (
		closing = p.closing
		drain   <-chan time.Time // set while Close waits for the group in flight
	)
	for {
		inbox := p.inbox
		if syncing != nil || s.full() || closing == nil || s.deposed != nil {
			inbox = nil
		}
		select {
		case req := <-inbox:
			if err := s.step(req); err != nil {
				syncing = p.resync(err, "reading the store failed")
				continue
			}
			s.flush()
		case res := <-s.appended:
			switch {
			case syncing != nil || res.session != s.session:
				// The group in flight when a re-sync began: its requests have
				// failed, and the restore replays whatever it committed.
			case res.err != nil:
				syncing = p.resync(res.err, "changelog append failed")
			default:
				s.committed(res)
				if closing != nil {
					s.flush()
				}
				if err := s.apply(res.g); err != nil {
					syncing = p.resync(err, "applying committed changes to the store failed")
				}
			}
		case r := <-syncing:
			syncing = nil
			if r.err != nil {
				s.deposed = r.err
				p.deposed.Store(&r.err)
				p.cfg.Log.Warn().Err(r.err).Msg("partition deposed: not serving")
				break
			}
			s.serve(r)
		case <-closing:
			// Graceful stop: take nothing more, fail what was never appended
			// (safe to retry elsewhere), and wait for the group in flight so
			// its requests get their true outcome.
			closing = nil
			p.serving.Store(false)
			s.failOpen(ErrStopped)
			drain = time.After(drainTimeout)
		case <-drain:
			p.stop()
		case <-p.ctx.Done():
			p.shutdown(syncing)
			return
		}
		if syncing != nil || closing == nil || s.deposed != nil {
			p.drainInbox(p.unavailable())
		}
		if closing == nil && s.inflight == nil {
			p.stop()
		}
		p.metrics.observe(p)
	}
}

// resync fails every pending request and starts a restore. Requests in the
// group that failed get its error (it says whether the group may have
// committed); requests never appended get a plain, retry-safe failure.
func (p *Partition) resync(err error, why string) chan syncResult {
	p.cfg.Log.Error().Err(err).Msg(why + "; failing pending requests and re-syncing")
	p.state.failPending(fmt.Errorf("%w: %w", ErrAppendFailed, err), fmt.Errorf("%w: %w", ErrAppendFailed, changelog.ErrNotCommitted))
	return p.startSync()
}

// shutdown ends the loop: whatever is still pending fails, the flusher,
// consumer and restore stop, the appender and the store close.
func (p *Partition) shutdown(syncing chan syncResult) {
	s := &p.state
	s.failPending(fmt.Errorf("%w: %w", ErrStopped, changelog.ErrCommitUnknown), ErrStopped)
	p.drainInbox(ErrStopped)
	s.stopFlusher()
	p.wg.Wait()
	if s.app != nil {
		s.app.Close()
	}
	if syncing != nil {
		select {
		case r := <-syncing: // a restore that finished as we stopped
			if r.app != nil {
				r.app.Close()
			}
		default:
		}
	}
	if err := p.cfg.Store.Close(); err != nil {
		p.cfg.Log.Error().Err(err).Msg("closing store")
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
			if err == nil || errors.Is(err, ErrDeposed) {
				r.err = err
				out <- r
				return
			}
			if p.ctx.Err() != nil {
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
