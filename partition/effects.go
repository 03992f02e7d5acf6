package partition

import (
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
)

// The loop's effects: what the driver (core.Driver) asks of the world when
// it carries out a Ready, done with the partition's goroutines, channels and
// clock.

// Now is the wall clock.
func (l *loop) Now() time.Time { return time.Now() }

// StopIngest stops the ingest consumer.
func (l *loop) StopIngest() { l.stopIngesting() }

// Reply returns a request's budget and sends its reply (buffered 1: never
// blocks).
func (l *loop) Reply(r core.Reply) {
	req := r.Handle.(*request)
	l.p.refund(req)
	req.reply <- r
}

// Append hands g to the flusher.
func (l *loop) Append(g *core.Group) {
	l.toFlush <- g // buffered 1 and the flusher is idle: never blocks
}

// Queued: the loop's driver writes at once.
func (l *loop) Queued(*core.Group) {}

// Stored publishes how far the store reaches after a group's write. Until
// then the core's overlay answers for the group's keys.
func (l *loop) Stored(_ *core.Group, b kv.Write, err error) {
	if err == nil {
		l.p.view.publish(b.Offsets, b.Ingest)
	}
}

// Restore starts a restore in the background (restore.go).
func (l *loop) Restore() { l.startRestore() }

// StartIngest starts the ingest consumer (ingest.go).
func (l *loop) StartIngest(s *core.IngestStart) { l.startIngest(s) }

// WakeAt sets the timer.
func (l *loop) WakeAt(t time.Time) { l.wake.Reset(time.Until(t)) }

// Stop: run ends with the core stopped, then shuts the loop down.
func (l *loop) Stop() {}

// Carried makes the core's state visible to callers (state.go).
func (l *loop) Carried() {
	p := l.p
	l.publishCore()
	p.applies.Store(l.core.Applies())
	p.publishQuiet(l.core.QuietUntil())
	p.metrics.observe(p)
}

// timedStore is the partition's store as the driver uses it: its writes
// are timed for the metrics.
type timedStore struct{ p *Partition }

func (s timedStore) Apply(b kv.Write) error {
	start := time.Now()
	err := s.p.cfg.Store.Apply(b)
	s.p.metrics.applied(time.Since(start))
	return err
}

// GetMany reads keys for the core; a read that finds the store corrupt is
// recorded, so the next restore empties it or names it (corrupt.go).
func (s timedStore) GetMany(keys [][]byte) ([]kv.Read, error) {
	reads, err := s.p.cfg.Store.GetMany(keys)
	if err != nil {
		s.p.foundCorrupt(err)
	}
	return reads, err
}
