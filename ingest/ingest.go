// Package ingest consumes <cluster>.ingest, where any Kafka producer (a
// collector, kcat, any client with its default partitioner) writes upserts:
// key = the sluice key, value = the new value, a null value removes the key.
// Optional headers: "ttl" (seconds) and "op" ("upsert" or "remove").
//
// Each partition consumes the slots it owns and puts every record through its
// own pipeline (partition.Config.Ingest):
//
//	cfg.Ingest = func(ctx context.Context, from map[int32]int64, deliver func([]kv.IngestRecord) error) error {
//		return ingest.Consume(ctx, ingest.Config{Client: opts, Topic: topics.Ingest(), Lag: lag}, from, deliver)
//	}
//
// where lag (a *Lag, one per node) reports how far behind the topic's end
// the node's consumers and its partitions' applied state are.
package ingest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
)

// Header names a producer may set.
const (
	HeaderTTL = "ttl"
	HeaderOp  = "op"
)

// Config says what to consume.
type Config struct {
	// Client holds the connection options.
	Client []kgo.Opt
	Topic  string
	// Lag, if set, learns the consumer's position and the topic's end from
	// every fetch.
	Lag *Lag
	// MaxBatch bounds the records handed over at once. Default 1000.
	MaxBatch int
}

// Consume reads the slots in from, starting at their offsets, read_committed
// (a transactional producer's aborted records never apply), and hands each
// batch to deliver until ctx ends or deliver fails. deliver blocks while the
// partition is busy; reading then pauses, with at most a fetch or two per
// slot held.
//
// It reads with kafkaread.Tail, not franz-go's consumer: after kfake (the
// embedded broker) restarts from a crash it aborts a transaction that was in
// flight without writing a marker, and franz-go's read_committed filter then
// drops every later commit of that producer in the same fetch — records
// sluice forwarded between slots were lost that way (kafkaread/aborted.go).
func Consume(ctx context.Context, cfg Config, from map[int32]int64, deliver func([]kv.IngestRecord) error) error {
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1000
	}
	if len(from) == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	var session uint64
	if cfg.Lag != nil {
		session = cfg.Lag.started(from)
		defer cfg.Lag.stopped(session, from)
	}
	return kafkaread.Tail(ctx, cfg.Client, cfg.Topic, from, func(b kafkaread.Step) error {
		batch := make([]kv.IngestRecord, 0, len(b.Records))
		data := map[int32]int64{} // per slot, the offset after its last data record
		for _, r := range b.Records {
			batch = append(batch, Parse(r))
			data[r.Partition] = r.Offset + 1
		}
		if cfg.Lag != nil {
			for slot, next := range b.Reached {
				d, ok := data[slot]
				if !ok {
					d = -1
				}
				cfg.Lag.fetch(session, slot, next, d, b.HighWatermarks[slot])
			}
		}
		for len(batch) > 0 {
			n := min(len(batch), cfg.MaxBatch)
			if err := deliver(batch[:n]); err != nil {
				return err
			}
			batch = batch[n:]
		}
		return nil
	})
}

// Parse reads one ingest record. A header it cannot read makes a record whose
// Err says why; the partition sends it to the DLQ.
func Parse(r *kgo.Record) kv.IngestRecord {
	ir := kv.IngestRecord{Slot: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Remove: r.Value == nil}
	if len(r.Headers) > 0 {
		ir.Headers = make([]kv.Header, len(r.Headers))
		for i, h := range r.Headers {
			ir.Headers[i] = kv.Header{Key: h.Key, Value: h.Value}
		}
	}
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderTTL:
			secs, err := strconv.ParseInt(strings.TrimSpace(string(h.Value)), 10, 64)
			if err != nil || secs <= 0 || secs > 100*365*24*3600 {
				ir.Err = fmt.Errorf("%w: header ttl=%q is not a positive number of seconds", kv.ErrInvalid, h.Value)
				return ir
			}
			ir.TTL = time.Duration(secs) * time.Second
		case HeaderOp:
			switch string(h.Value) {
			case "upsert":
				if r.Value == nil {
					ir.Err = fmt.Errorf("%w: header op=upsert on a record with a null value", kv.ErrInvalid)
					return ir
				}
				ir.Remove = false
			case "remove":
				ir.Remove = true
			default:
				ir.Err = fmt.Errorf("%w: header op=%q is neither upsert nor remove", kv.ErrInvalid, h.Value)
				return ir
			}
		}
	}
	if ir.Remove {
		ir.Value = nil
	} else if ir.Value == nil {
		ir.Value = []byte{}
	}
	return ir
}
