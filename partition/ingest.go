package partition

import (
	"context"
	"time"

	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
)

// IngestSource is where a partition's ingest records come from: its slots
// of the ingest topic (package ingest's consumer, as package node wires it).
// The path of a record: the source's Consume hands a batch to the
// session's deliver, which queues it in the inbox as an OpIngest request;
// the driver steps it into the core, which writes it to the group appended
// next, beside the mark of its offset.
type IngestSource interface {
	// Consume reads the given slots from their next offsets and hands each
	// batch to deliver, which blocks while the partition is busy, until ctx
	// ends or deliver fails.
	Consume(ctx context.Context, from map[int32]int64, deliver func([]kv.IngestRecord) error) error
}

// ingestSession is one consumer's delivery into the partition: its batches
// carry its generation, so the core ignores those of a consumer a re-sync
// retired.
type ingestSession struct {
	p   *Partition
	ctx context.Context
	gen uint64
}

func (s ingestSession) deliver(recs []kv.IngestRecord) error { return s.p.deliver(s.ctx, s.gen, recs) }

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
		session := ingestSession{p: p, ctx: ctx, gen: s.Gen}
		// Restarting from the same offsets is safe: the core skips what it
		// already took. The consumer ends only with ctx.
		_, _ = retry.Forever(ctx, func() (struct{}, error) {
			return struct{}{}, p.cfg.Ingest.Consume(ctx, s.From, session.deliver)
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
		p.refund(req)
		return ctx.Err()
	case <-p.done:
		p.refund(req)
		return ErrStopped
	}
}
