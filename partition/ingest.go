package partition

import (
	"context"
	"time"

	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
)

// startIngest starts the consumer of the partition's ingest slots from the
// positions the core gives. Its deliveries carry its generation: the core
// ignores those of a consumer a re-sync retired.
func (l *loop) startIngest(s *core.IngestStart) {
	p := l.p
	if p.cfg.Ingest == nil {
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	l.stopIngest = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		deliver := func(recs []kv.IngestRecord) error { return p.deliver(ctx, s.Gen, recs) }
		// Restarting from the same offsets is safe: the core skips what it
		// already took. The consumer ends only with ctx.
		_, _ = retry.Forever(ctx, func() (struct{}, error) {
			return struct{}{}, p.cfg.Ingest(ctx, s.From, deliver)
		}, func(err error, wait time.Duration) {
			p.cfg.Log.Error().Err(err).Dur("retry_in", wait).Msg("ingest consumer stopped")
		})
	}()
}

func (l *loop) stopIngesting() {
	if l.stopIngest != nil {
		l.stopIngest()
		l.stopIngest = nil
	}
}

// deliver hands a batch of ingest records to the loop, waiting while the inbox
// is full: a consumer that cannot deliver stops polling, so fetching pauses
// and memory stays bounded however fast the producers are.
func (p *Partition) deliver(ctx context.Context, gen uint64, recs []kv.IngestRecord) error {
	req := &request{Request: core.Request{Op: core.OpIngest, Ingest: recs, Gen: gen}}
	if err := p.admitWait(ctx, req); err != nil {
		return err
	}
	p.prefetch(&req.Request)
	select {
	case p.inbox <- req:
		return nil
	case <-ctx.Done():
		p.release(req)
		return ctx.Err()
	case <-p.done:
		p.release(req)
		return ErrStopped
	}
}
