package kafkaread

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reader fetches the slots of one topic (read_committed), one request per slot
// sent to the slot's leader, and knows where each slot's next fetch starts:
// past every record, marker, aborted batch and compacted gap the broker
// answered with, whether or not a record came out of it.
//
// It does not use franz-go's consumer: that one moves its position past
// control records and aborted batches silently (a fetch with no record is
// never handed to PollFetches), so a caller waiting for a position can wait
// forever. Records are still parsed by franz-go (kgo.ProcessFetchPartition).
type reader struct {
	cl       *kgo.Client
	adm      *kadm.Client
	topic    string
	maxWait  time.Duration
	maxBytes int32
	decomp   kgo.Decompressor

	mu      sync.Mutex
	known   bool // id and leaders hold the last metadata
	id      [16]byte
	leaders map[int32]int32
}

// fetched is the answer to one fetch of one slot.
type fetched struct {
	slot    int32
	from    int64         // the position fetched from
	records []*kgo.Record // committed data records at or after from, in order
	bytes   int64
	// next is where the slot's next fetch starts: past everything the broker
	// returned, records or not.
	next int64
	// empty says the broker returned no batch for the slot; whole that the
	// answer held no batch for any slot either: then nothing committed lies
	// in [from, lso).
	empty, whole bool
	lso, hwm     int64
	err          error // the fetch failed; retried unless fatal
	fatal        bool
}

func newReader(client []kgo.Opt, topic string, cfg readCfg) (*reader, error) {
	cl, err := kgo.NewClient(client...)
	if err != nil {
		return nil, err
	}
	return &reader{cl: cl, adm: kadm.NewClient(cl), topic: topic, maxWait: cfg.maxWait, maxBytes: cfg.maxBytes, decomp: kgo.DefaultDecompressor()}, nil
}

func (r *reader) close() { r.cl.Close() }

// leader returns the topic's id and slot's leader, from metadata asked for
// again after a fetch said it was stale.
func (r *reader) leader(ctx context.Context, slot int32) ([16]byte, int32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.known {
		md, err := r.adm.Metadata(ctx, r.topic)
		if err != nil {
			return r.id, 0, err
		}
		td, ok := md.Topics[r.topic]
		if !ok {
			return r.id, 0, kerr.UnknownTopicOrPartition
		}
		if td.Err != nil {
			return r.id, 0, td.Err
		}
		r.id, r.leaders = td.ID, make(map[int32]int32, len(td.Partitions))
		for p, d := range td.Partitions {
			r.leaders[p] = d.Leader
		}
		r.known = true
	}
	l, ok := r.leaders[slot]
	if !ok || l < 0 {
		r.known = false
		return r.id, 0, fmt.Errorf("no leader for slot %d: %w", slot, kerr.LeaderNotAvailable)
	}
	return r.id, l, nil
}

func (r *reader) forget() {
	r.mu.Lock()
	r.known = false
	r.mu.Unlock()
}

// fetch reads the slots of pos, all led by leader, once: one request for
// all of them. A broker answers the requests of one connection one at a time,
// so a request per slot would have each wait out the requests before it
// (their MaxWait, when their slots are idle); one request returns as soon as
// any of its slots has something committed.
func (r *reader) fetch(ctx context.Context, id [16]byte, leader int32, pos map[int32]int64) []fetched {
	out := make([]fetched, 0, len(pos))
	fail := func(err error) []fetched {
		for slot, p := range pos {
			out = append(out, fetched{slot: slot, from: p, next: p, err: err})
		}
		return out
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(r.maxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = r.maxBytes
	req.IsolationLevel = 1 // read_committed: bounded by the last stable offset
	req.SessionEpoch = -1  // a full fetch, no session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = r.topic, id
	for slot, p := range pos {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = slot, p, r.maxBytes
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)

	kresp, err := r.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		r.forget()
		return fail(err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fail(err)
	}
	parts := make(map[int32]*kmsg.FetchResponseTopicPartition, len(pos))
	batches := false
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			part := &resp.Topics[i].Partitions[j]
			if _, ok := pos[part.Partition]; ok {
				parts[part.Partition] = part
				batches = batches || len(part.RecordBatches) > 0
			}
		}
	}
	for slot, p := range pos {
		part, ok := parts[slot]
		if !ok {
			out = append(out, fetched{slot: slot, from: p, next: p, err: errors.New("the broker did not answer for the slot")})
			continue
		}
		f := r.parse(slot, p, part)
		// A broker fills an answer's partitions in order, and once one has
		// data the others get only what is left of the answer's bytes: a
		// partition can come back empty with records to read. With no
		// data anywhere, each was read in full.
		f.whole = !batches
		out = append(out, f)
	}
	return out
}

// parse reads one slot's part of a fetch answer.
func (r *reader) parse(slot int32, pos int64, part *kmsg.FetchResponseTopicPartition) fetched {
	f := fetched{slot: slot, from: pos, next: pos}
	f.lso, f.hwm = part.LastStableOffset, part.HighWatermark
	switch err := kerr.ErrorForCode(part.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange) && pos < part.LogStartOffset:
		f.err, f.fatal = &OffsetGoneError{Topic: r.topic, Slot: slot, Needed: pos, LogStart: part.LogStartOffset}, true
		return f
	case errors.Is(err, kerr.OffsetOutOfRange):
		f.err = fmt.Errorf("position %d is past the log's end %d: %w", pos, part.HighWatermark, err)
		return f
	case kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.InconsistentTopicID):
		r.forget() // a leader moved, or our metadata is stale
		f.err = err
		return f
	default:
		f.err, f.fatal = err, true
		return f
	}
	if len(part.RecordBatches) == 0 {
		f.empty = true
		return f
	}
	kept := *part
	var end int64
	kept.RecordBatches, end = dropAborted(part)
	kept.AbortedTransactions = nil
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset:         pos,
		IsolationLevel: kgo.ReadUncommitted(), // dropAborted has filtered
		Topic:          r.topic,
		Partition:      slot,
	}, &kept, r.decomp, nil)
	if fp.Err != nil {
		f.err, f.fatal = fmt.Errorf("reading slot %d at %d: %w", slot, pos, fp.Err), true
		return f
	}
	f.records = fp.Records
	for _, rec := range fp.Records {
		f.bytes += int64(len(rec.Key) + len(rec.Value))
	}
	f.next = max(pos, next, end)
	return f
}
