package kafkaread

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Step is one step of a replay or tail: the data records in offset order per
// slot, and the next offset of every slot the step advanced. A slot can
// advance with no record: past commit and abort markers, aborted batches and
// gaps left by compaction.
type Step struct {
	Records []*kgo.Record
	Reached map[int32]int64
	// HighWatermarks has, for each slot of Reached, its high watermark when
	// it was fetched.
	HighWatermarks map[int32]int64
	Bytes          int64
	// Lag is how many offsets are left to replay after this batch.
	Lag int64
}

// Stall says why a read has not moved for a while.
type Stall struct {
	Slot int32
	// Position is the slot's next offset to read; Target is where a replay
	// stops (the slot's last stable offset when it began; while tailing, the
	// last one seen).
	Position, Target int64
	For              time.Duration
	Reason           string
}

func (s Stall) String() string {
	return fmt.Sprintf("waiting for slot %d at %d/%d: %s", s.Slot, s.Position, s.Target, s.Reason)
}

// Opt tunes Replay and Tail.
type Opt func(*readCfg)

type readCfg struct {
	log        zerolog.Logger
	stallAfter time.Duration
	onStall    func(*Stall)
	maxWait    time.Duration
	// maxBytes bounds one fetch's answer and each slot's part of it (a
	// broker still returns a first batch over it); maxStepBytes, the
	// records of one Step.
	maxBytes     int32
	maxStepBytes int64
}

// WithLog sets where a read that makes no progress says why, at warn level.
// Default: nowhere.
func WithLog(l zerolog.Logger) Opt { return func(c *readCfg) { c.log = l } }

// StallAfter is how long a slot may make no progress before the read warns
// and reports it to OnStall. Default 10s.
func StallAfter(d time.Duration) Opt { return func(c *readCfg) { c.stallAfter = d } }

// OnStall is called with the slot the read has waited for longest once it
// has stalled, and with nil once nothing is stalled any more (and when the
// read ends). It is called from the read's goroutine.
func OnStall(fn func(*Stall)) Opt { return func(c *readCfg) { c.onStall = fn } }

// FetchMaxBytes bounds what a read holds: one fetch's answer, and the
// records of one Step (at least one fetch's). Default 4 MiB per fetch and
// 16 MiB per Step.
func FetchMaxBytes(n int32) Opt {
	return func(c *readCfg) { c.maxBytes, c.maxStepBytes = n, int64(n) }
}

// FetchMaxWait is how long the broker holds a fetch that finds nothing
// committed to answer (it answers as soon as there is). Default 500ms.
func FetchMaxWait(d time.Duration) Opt { return func(c *readCfg) { c.maxWait = d } }

func newReadCfg(opts []Opt) readCfg {
	c := readCfg{log: zerolog.Nop(), stallAfter: 10 * time.Second, onStall: func(*Stall) {},
		maxWait: 500 * time.Millisecond, maxBytes: 4 << 20, maxStepBytes: 16 << 20}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Replay reads topic's committed records (read_committed) from the given next
// offset of each slot up to the slots' last stable offset at the time of the
// call, handing them to fn in order. It returns the offsets reached.
//
// A slot is done when its fetch position reaches its target, whatever lies
// before it: records, commit or abort markers, batches of transactions
// aborted with or without a marker, gaps left by compaction. A slot that
// makes no progress is retried with backoff, logged and reported (OnStall).
// A slot whose log starts after the offset asked for is an *OffsetGoneError:
// Replay never silently starts later; one whose log ends before it, an
// *OffsetPastEndError (CheckOffsets).
func Replay(ctx context.Context, client []kgo.Opt, topic string, from map[int32]int64, fn func(Step) error, opts ...Opt) (map[int32]int64, error) {
	if err := CheckOffsets(ctx, client, topic, from); err != nil {
		return nil, err
	}
	cfg := newReadCfg(opts)
	ends, starts, err := listOffsets(ctx, client, topic)
	if err != nil {
		return nil, err
	}
	reached := make(map[int32]int64, len(from))
	targets := make(map[int32]int64)
	for slot, off := range from {
		reached[slot] = off
		end, ok := ends.Lookup(topic, slot)
		if !ok {
			return nil, fmt.Errorf("kafkaread: %s has no slot %d", topic, slot)
		}
		start, _ := starts.Lookup(topic, slot)
		if off < start.Offset && off < end.Offset {
			return nil, &OffsetGoneError{Topic: topic, Slot: slot, Needed: off, LogStart: start.Offset}
		}
		if off < end.Offset {
			targets[slot] = end.Offset
		}
	}
	if len(targets) == 0 {
		return reached, nil
	}
	r, err := newReader(client, topic, cfg)
	if err != nil {
		return nil, err
	}
	defer r.close()
	err = follow(ctx, r, cfg, reached, targets, fn)
	return reached, err
}

// Tail reads topic's committed records from the given next offsets and hands
// them to fn, without end, until ctx ends: how a standby follows a partition.
// Like Replay it never starts later than asked (an offset past the log's end
// is an *OffsetPastEndError), and its offsets move past markers, aborted
// batches and compacted gaps too.
//
// A step's Lag counts the offsets still to read up to the log's committed
// end when the tail began: 0 once the tail has caught up with the log it
// found. A tail that begins at that end hands fn one step without records
// first, so that fn learns it is caught up without waiting for a write.
func Tail(ctx context.Context, client []kgo.Opt, topic string, from map[int32]int64, fn func(Step) error, opts ...Opt) error {
	if err := CheckOffsets(ctx, client, topic, from); err != nil {
		return err
	}
	ends, _, err := listOffsets(ctx, client, topic)
	if err != nil {
		return err
	}
	cfg := newReadCfg(opts)
	r, err := newReader(client, topic, cfg)
	if err != nil {
		return err
	}
	defer r.close()
	reached := make(map[int32]int64, len(from))
	behind := make(map[int32]int64) // slot: the committed end it has not reached yet
	for slot, off := range from {
		reached[slot] = off
		if end, ok := ends.Lookup(topic, slot); ok && end.Offset > off {
			behind[slot] = end.Offset
		}
	}
	if len(behind) == 0 {
		if err := fn(Step{Reached: maps.Clone(from), HighWatermarks: maps.Clone(from)}); err != nil {
			return err
		}
	}
	at := maps.Clone(from)
	return follow(ctx, r, cfg, reached, nil, func(b Step) error {
		maps.Copy(at, b.Reached)
		for slot, end := range behind {
			if at[slot] >= end {
				delete(behind, slot)
				continue
			}
			b.Lag += end - at[slot]
		}
		return fn(b)
	})
}

// listOffsets returns topic's last stable and start offsets.
func listOffsets(ctx context.Context, client []kgo.Opt, topic string) (ends, starts kadm.ListedOffsets, err error) {
	cl, err := kgo.NewClient(client...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err = adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err == nil {
		starts, err = adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kafkaread: listing offsets of %s: %w", topic, err)
	}
	return ends, starts, nil
}
