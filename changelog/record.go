package changelog

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderKey names the header that carries a change record's metadata.
const HeaderKey = "sluice"

const (
	formatV1 byte = 1

	flagRemove  byte = 1 << 0 // the key was removed (the Kafka value is null)
	flagIngest  byte = 1 << 1 // the change came from an ingest record: IngestOffset is its offset
	flagMark    byte = 1 << 2 // an ingest progress mark, not a change: IngestOffset is the next offset
	flagExpires byte = 1 << 3 // ExpiresAt is set
	flagBeat    byte = 1 << 4 // a heartbeat: proves, by committing, that its writer still owns the partition
	knownFlags       = flagRemove | flagIngest | flagMark | flagExpires | flagBeat
)

// Keys of sluice's own records start with byte 0x00, which user keys may not,
// so they never share a key (and compaction) with data.
const (
	reservedPrefix = "\x00sluice/"
	// MarkKeyPrefix starts the key of every ingest progress mark.
	MarkKeyPrefix = reservedPrefix + "ingest/"
	beatKeyPrefix = reservedPrefix + "heartbeat/"
)

// Change is one change record: the value a key took (or its removal), the
// key's version, the partition's clock stamp and the partition's epoch.
//
// A mark (Mark true) is not a change: it records, in the same transaction as
// the changes an ingest batch caused, the next ingest offset of its slot.
type Change struct {
	Key       []byte
	Value     []byte
	Remove    bool
	Version   uint64
	Timestamp uint64
	Epoch     uint64
	// ExpiresAt is when the value expires, unix milliseconds; 0 never.
	ExpiresAt uint64
	// Ingest says the change came from the ingest record at IngestOffset of
	// ingest slot IngestSlot.
	Ingest       bool
	Mark         bool
	IngestSlot   int32
	IngestOffset int64
	// Heartbeat records change nothing: a partition commits one to prove it
	// still owns its slots before it answers a read from committed state.
	Heartbeat bool
}

// NewHeartbeat returns a heartbeat of partition's owner at epoch.
func NewHeartbeat(partition uint32, epoch uint64) Change {
	return Change{Key: []byte(beatKeyPrefix + strconv.FormatUint(uint64(partition), 10)), Heartbeat: true, Epoch: epoch}
}

// NewMark returns the progress mark saying slot's ingest was consumed up to
// (not including) next.
func NewMark(slot int32, next int64, epoch uint64) Change {
	return Change{Key: []byte(MarkKeyPrefix + strconv.Itoa(int(slot))), Mark: true, IngestSlot: slot, IngestOffset: next, Epoch: epoch}
}

// Record builds the Kafka record for c in slot.
func (c Change) Record(topic string, slot int32) *kgo.Record {
	meta := make([]byte, 0, 2+5*binary.MaxVarintLen64)
	flags := byte(0)
	if c.Remove {
		flags |= flagRemove
	}
	if c.Ingest {
		flags |= flagIngest
	}
	if c.Mark {
		flags |= flagMark
	}
	if c.ExpiresAt != 0 {
		flags |= flagExpires
	}
	if c.Heartbeat {
		flags |= flagBeat
	}
	meta = append(meta, formatV1, flags)
	meta = binary.AppendUvarint(meta, c.Version)
	meta = binary.AppendUvarint(meta, c.Timestamp)
	meta = binary.AppendUvarint(meta, c.Epoch)
	if c.Ingest || c.Mark {
		meta = binary.AppendUvarint(meta, uint64(c.IngestSlot))
		meta = binary.AppendUvarint(meta, uint64(c.IngestOffset))
	}
	if c.ExpiresAt != 0 {
		meta = binary.AppendUvarint(meta, c.ExpiresAt)
	}
	value := c.Value
	if c.Remove {
		value = nil
	} else if value == nil {
		value = []byte{}
	}
	return &kgo.Record{
		Topic:     topic,
		Partition: slot,
		Key:       c.Key,
		Value:     value,
		Headers:   []kgo.RecordHeader{{Key: HeaderKey, Value: meta}},
	}
}

// Decode reads a change record back.
func Decode(r *kgo.Record) (Change, error) {
	var meta []byte
	found := false
	for _, h := range r.Headers {
		if h.Key == HeaderKey {
			meta, found = h.Value, true
		}
	}
	if !found {
		return Change{}, fmt.Errorf("%w: slot %d offset %d has no %q header", ErrBadRecord, r.Partition, r.Offset, HeaderKey)
	}
	if len(meta) < 2 || meta[0] != formatV1 {
		return Change{}, fmt.Errorf("%w: slot %d offset %d: unknown format", ErrBadRecord, r.Partition, r.Offset)
	}
	flags := meta[1]
	if flags&^knownFlags != 0 || (flags&flagMark != 0 && flags&(flagIngest|flagRemove) != 0) {
		return Change{}, fmt.Errorf("%w: slot %d offset %d: bad flags %#x", ErrBadRecord, r.Partition, r.Offset, flags)
	}
	c := Change{Key: r.Key, Remove: flags&flagRemove != 0, Ingest: flags&flagIngest != 0, Mark: flags&flagMark != 0, Heartbeat: flags&flagBeat != 0}
	fields := []*uint64{&c.Version, &c.Timestamp, &c.Epoch}
	var ingestSlot, ingestOffset uint64
	if c.Ingest || c.Mark {
		fields = append(fields, &ingestSlot, &ingestOffset)
	}
	if flags&flagExpires != 0 {
		fields = append(fields, &c.ExpiresAt)
	}
	rest := meta[2:]
	for _, dst := range fields {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Change{}, fmt.Errorf("%w: slot %d offset %d: truncated header", ErrBadRecord, r.Partition, r.Offset)
		}
		*dst, rest = v, rest[n:]
	}
	if ingestOffset > math.MaxInt64 || ingestSlot > math.MaxInt32 {
		return Change{}, fmt.Errorf("%w: slot %d offset %d: ingest position out of range", ErrBadRecord, r.Partition, r.Offset)
	}
	c.IngestSlot, c.IngestOffset = int32(ingestSlot), int64(ingestOffset)
	if len(r.Key) == 0 {
		return Change{}, fmt.Errorf("%w: slot %d offset %d: empty key", ErrBadRecord, r.Partition, r.Offset)
	}
	if !c.Remove {
		c.Value = r.Value
		if c.Value == nil {
			c.Value = []byte{}
		}
	}
	return c, nil
}
