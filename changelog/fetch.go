package changelog

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
	// empty says the broker returned no batch at all: nothing committed lies
	// in [from, lso).
	empty    bool
	lso, hwm int64
	err      error // the fetch failed; retried unless fatal
	fatal    bool
}

func newReader(client []kgo.Opt, topic string, maxWait time.Duration) (*reader, error) {
	cl, err := kgo.NewClient(client...)
	if err != nil {
		return nil, err
	}
	return &reader{cl: cl, adm: kadm.NewClient(cl), topic: topic, maxWait: maxWait, maxBytes: 4 << 20, decomp: kgo.DefaultDecompressor()}, nil
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

// fetch reads slot from pos once.
func (r *reader) fetch(ctx context.Context, slot int32, pos int64) fetched {
	f := fetched{slot: slot, from: pos, next: pos}
	id, leader, err := r.leader(ctx, slot)
	if err != nil {
		f.err = fmt.Errorf("metadata: %w", err)
		return f
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
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = slot, pos, r.maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	kresp, err := r.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		r.forget()
		f.err = err
		return f
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		f.err = err
		return f
	}
	var part *kmsg.FetchResponseTopicPartition
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].Partition == slot {
				part = &resp.Topics[i].Partitions[j]
			}
		}
	}
	if part == nil {
		f.err = errors.New("the broker did not answer for the slot")
		return f
	}
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
