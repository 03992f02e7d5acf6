package kafkaread

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckOffsets checks that every slot's log holds the offset a replay or a
// tail of topic would start at: an offset before the log's start is an
// *OffsetGoneError (the log was deleted past it), one past the log's end (its
// high watermark: what was ever written) an *OffsetPastEndError (the topic
// is not the one the state was read from). Neither is ever clamped.
func CheckOffsets(ctx context.Context, client []kgo.Opt, topic string, from map[int32]int64) error {
	cl, err := kgo.NewClient(client...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
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
	if err != nil {
		return fmt.Errorf("kafkaread: listing offsets of %s: %w", topic, err)
	}
	slots := make([]int32, 0, len(from))
	for s := range from {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	for _, slot := range slots {
		off := from[slot]
		end, ok := ends.Lookup(topic, slot)
		if !ok {
			return fmt.Errorf("kafkaread: %s has no slot %d", topic, slot)
		}
		if off > end.Offset {
			return &OffsetPastEndError{Topic: topic, Slot: slot, Reached: off, LogEnd: end.Offset}
		}
		if start, ok := starts.Lookup(topic, slot); ok && off < start.Offset {
			return &OffsetGoneError{Topic: topic, Slot: slot, Needed: off, LogStart: start.Offset}
		}
	}
	return nil
}
