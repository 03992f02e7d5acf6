package partition

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
)

// IngestRecord is one record of the ingest topic handed to its partition.
type IngestRecord struct {
	Slot   int32
	Offset int64
	Key    []byte
	Value  []byte
	Remove bool
	TTL    time.Duration
	// Headers are kept for the dead-letter copy.
	Headers []kgo.RecordHeader
	// Err is set when the record could not be read (a bad header): it goes to
	// the DLQ with this reason.
	Err error
}

// DLQ header names.
const (
	HeaderError        = "error"
	HeaderSourceSlot   = "source-slot"
	HeaderSourceOffset = "source-offset"
)

// deliver hands a batch of ingest records to the loop, waiting while the inbox
// is full: a consumer that cannot deliver stops polling, so fetching pauses
// and memory stays bounded however fast the producers are.
func (p *Partition) deliver(ctx context.Context, gen uint64, recs []IngestRecord) error {
	req := &request{op: opIngest, ingest: recs, gen: gen, reply: make(chan reply, 1)}
	p.prefetch(req)
	select {
	case p.inbox <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return ErrStopped
	}
}

// ingest runs a batch of ingest records through the same pipeline as a gRPC
// write. The next offset of each slot goes, as a mark, into the same
// transaction as the changes (and into the same store batch after commit), so
// every record is applied exactly once across crashes and moves. A record that
// cannot be applied goes to the DLQ in that transaction too.
func (s *loopState) ingest(req *request) error {
	if req.gen != s.ingestGen {
		return nil // from a consumer retired by a re-sync: its records come again
	}
	cfg := &s.p.cfg
	g := s.open
	if g.ingest == nil {
		g.ingest = make(map[int32]int64)
	}
	for i, r := range req.ingest {
		if !cfg.Range.Contains(r.Slot) || r.Offset < s.ingestPos[r.Slot] {
			continue
		}
		err := r.Err
		if err == nil {
			err = s.ingestOne(req, i)
		}
		if err != nil {
			if r.Err == nil && !isInvalid(err) {
				return err // the store failed: re-sync
			}
			g.addExtra(deadLetter(cfg.DLQTopic, r, err))
			g.dlq++
		}
		s.ingestPos[r.Slot] = r.Offset + 1
		g.ingest[r.Slot] = r.Offset + 1
	}
	return nil
}

// mark adds to g, before it is appended, the progress mark of every ingest
// slot it consumed from.
func (g *group) mark(topic string, epoch uint64) {
	for slot, next := range g.ingest {
		g.addExtra(changelog.NewMark(slot, next, epoch).Record(topic, slot))
	}
}

func isInvalid(err error) bool { return errors.Is(err, pipeline.ErrInvalid) }

// ingestOne applies one record; an error wrapping pipeline.ErrInvalid sends it
// to the DLQ, any other is the store failing.
func (s *loopState) ingestOne(req *request, i int) error {
	r := req.ingest[i]
	if err := pipeline.ValidateEntry(r.Key, r.Value); err != nil {
		return err
	}
	cfg := &s.p.cfg
	if slot := keyspace.Slot(r.Key, cfg.Slots); !cfg.Range.Contains(slot) {
		// Produced with another partitioner (librdkafka's default is CRC32, not
		// murmur2): hand it, in this same transaction, to the slot that owns the
		// key. Its owner consumes it from there, exactly once.
		s.open.addExtra(forward(cfg.IngestTopic, slot, r))
		s.open.forwarded++
		return nil
	}
	cur, found, err := s.lookup(req, i)
	if err != nil {
		return err
	}
	if r.Remove && !found {
		return nil // nothing to remove; the mark still records the offset
	}
	c := s.next(r.Key, cur, found)
	c.Ingest, c.IngestSlot, c.IngestOffset = true, r.Slot, r.Offset
	if r.Remove {
		c.Remove = true
	} else {
		w, keep, err := pipeline.Run(cfg.Stages, pipeline.Write{Key: r.Key, Value: r.Value, Source: "ingest", Timestamp: c.Timestamp})
		if err != nil || !keep {
			return err // rejected: to the DLQ; dropped: the mark still records the offset
		}
		c.Value, c.ExpiresAt = w.Value, expiry(c.Timestamp, r.TTL)
		if c.Value == nil {
			c.Value = []byte{}
		}
	}
	s.write(c)
	return nil
}

// HeaderForwardedFrom is set on an ingest record sluice moved to the slot that
// owns its key: "slot/offset" of where it was produced.
const HeaderForwardedFrom = "sluice-forwarded-from"

func forward(topic string, slot int32, r IngestRecord) *kgo.Record {
	h := append(append([]kgo.RecordHeader(nil), r.Headers...),
		kgo.RecordHeader{Key: HeaderForwardedFrom, Value: []byte(fmt.Sprintf("%d/%d", r.Slot, r.Offset))})
	return &kgo.Record{Topic: topic, Partition: slot, Key: r.Key, Value: r.Value, Headers: h}
}

// deadLetter is the DLQ copy of r: its key, value and headers, plus why and
// where it came from.
func deadLetter(topic string, r IngestRecord, why error) *kgo.Record {
	h := append(append([]kgo.RecordHeader(nil), r.Headers...),
		kgo.RecordHeader{Key: HeaderError, Value: []byte(why.Error())},
		kgo.RecordHeader{Key: HeaderSourceSlot, Value: []byte(strconv.Itoa(int(r.Slot)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{Topic: topic, Partition: 0, Key: r.Key, Value: r.Value, Headers: h}
}

// startIngest starts the consumer of the partition's ingest slots from the
// positions the restore found.
func (s *loopState) startIngest() {
	p := s.p
	if p.cfg.Ingest == nil {
		return
	}
	s.ingestGen++
	gen := s.ingestGen
	from := make(map[int32]int64, len(s.ingestPos))
	for slot, off := range s.ingestPos {
		from[slot] = off
	}
	ctx, cancel := context.WithCancel(p.ctx)
	s.stopIngest = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		deliver := func(recs []IngestRecord) error { return p.deliver(ctx, gen, recs) }
		for attempt := 0; ; attempt++ {
			err := p.cfg.Ingest(ctx, from, deliver)
			if ctx.Err() != nil {
				return
			}
			// Restarting from the same offsets is safe: the loop skips what it
			// already took.
			wait := min(time.Duration(1<<min(attempt, 5))*200*time.Millisecond, 5*time.Second)
			p.cfg.Log.Error().Err(err).Dur("retry_in", wait).Msg("ingest consumer stopped")
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
	}()
}
