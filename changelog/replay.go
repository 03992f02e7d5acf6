package changelog

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Batch is one fetch's worth of a replay: the data records in offset order per
// slot, and the next offset of every slot the fetch advanced.
type Batch struct {
	Records []*kgo.Record
	Reached map[int32]int64
	Bytes   int64
	// Lag is how many offsets are left to replay after this batch.
	Lag int64
}

// Replay reads topic's committed records (read_committed) from the given next
// offset of each slot up to the slots' last stable offset at the time of the
// call, handing each fetch to fn in order. It returns the offsets reached.
// A slot whose log starts after the offset asked for is an *OffsetGoneError:
// Replay never silently starts later; one whose log ends before it, an
// *OffsetPastEndError (CheckOffsets).
func Replay(ctx context.Context, client []kgo.Opt, topic string, from map[int32]int64, fn func(Batch) error) (map[int32]int64, error) {
	if err := CheckOffsets(ctx, client, topic, from); err != nil {
		return nil, err
	}
	admCl, err := kgo.NewClient(client...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	var starts kadm.ListedOffsets
	if err == nil {
		starts, err = adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
	}
	admCl.Close()
	if err != nil {
		return nil, fmt.Errorf("changelog: listing offsets of %s: %w", topic, err)
	}

	reached := make(map[int32]int64, len(from))
	targets := make(map[int32]int64)
	consume := make(map[int32]kgo.Offset)
	for slot, off := range from {
		reached[slot] = off
		end, ok := ends.Lookup(topic, slot)
		if !ok {
			return nil, fmt.Errorf("changelog: %s has no slot %d", topic, slot)
		}
		start, _ := starts.Lookup(topic, slot)
		if off < start.Offset && off < end.Offset {
			return nil, &OffsetGoneError{Topic: topic, Slot: slot, Needed: off, LogStart: start.Offset}
		}
		if off < end.Offset {
			targets[slot] = end.Offset
			consume[slot] = kgo.NewOffset().At(off)
		}
	}
	if len(targets) == 0 {
		return reached, nil
	}

	opts := append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (commit and abort markers) take offsets too; keeping them
		// is how a slot whose last entry is a marker reaches its target.
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(16 << 20),
	}, client...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(targets) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return reached, err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("changelog: fetching %s slot %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return reached, ferr
		}
		b := Batch{Reached: make(map[int32]int64)}
		fetches.EachRecord(func(r *kgo.Record) {
			target, want := targets[r.Partition]
			if !want || r.Offset >= target {
				return
			}
			b.Reached[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				b.Records = append(b.Records, r)
				b.Bytes += int64(len(r.Key) + len(r.Value))
			}
		})
		if len(b.Reached) == 0 {
			continue
		}
		for slot, target := range targets {
			off := reached[slot]
			if r, ok := b.Reached[slot]; ok {
				off = r
			}
			b.Lag += target - off
		}
		if err := fn(b); err != nil {
			return reached, err
		}
		for slot, off := range b.Reached {
			reached[slot] = off
			if off >= targets[slot] {
				delete(targets, slot)
				cl.PauseFetchPartitions(map[string][]int32{topic: {slot}})
			}
		}
	}
	return reached, nil
}

// Tail reads topic's committed records from the given next offsets and hands
// each fetch to fn, without end, until ctx ends: how a standby follows a
// partition. Like Replay it never starts later than asked.
func Tail(ctx context.Context, client []kgo.Opt, topic string, from map[int32]int64, fn func(Batch) error) error {
	if err := CheckOffsets(ctx, client, topic, from); err != nil {
		return err
	}
	consume := make(map[int32]kgo.Offset, len(from))
	for slot, off := range from {
		consume[slot] = kgo.NewOffset().At(off)
	}
	opts := append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()), // out of range is an error, never a silent jump
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(16 << 20),
	}, client...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("changelog: tailing %s slot %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		b := Batch{Reached: make(map[int32]int64)}
		fetches.EachRecord(func(r *kgo.Record) {
			b.Reached[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				b.Records = append(b.Records, r)
				b.Bytes += int64(len(r.Key) + len(r.Value))
			}
		})
		if len(b.Reached) > 0 {
			if err := fn(b); err != nil {
				return err
			}
		}
	}
}
