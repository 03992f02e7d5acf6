package changelog

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderKey names the header that carries a change record's metadata.
const HeaderKey = "sluice"

const (
	formatV1   byte = 1
	flagRemove byte = 1 << 0
)

// Change is one change record: the value a key took (or its removal), the
// key's version, the partition's clock stamp and the partition's epoch.
type Change struct {
	Key       []byte
	Value     []byte
	Remove    bool
	Version   uint64
	Timestamp uint64
	Epoch     uint64
}

// Record builds the Kafka record for c in slot.
func (c Change) Record(topic string, slot int32) *kgo.Record {
	meta := make([]byte, 0, 2+3*binary.MaxVarintLen64)
	flags := byte(0)
	if c.Remove {
		flags |= flagRemove
	}
	meta = append(meta, formatV1, flags)
	meta = binary.AppendUvarint(meta, c.Version)
	meta = binary.AppendUvarint(meta, c.Timestamp)
	meta = binary.AppendUvarint(meta, c.Epoch)
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
	c := Change{Key: r.Key, Remove: meta[1]&flagRemove != 0}
	rest := meta[2:]
	for _, dst := range []*uint64{&c.Version, &c.Timestamp, &c.Epoch} {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Change{}, fmt.Errorf("%w: slot %d offset %d: truncated header", ErrBadRecord, r.Partition, r.Offset)
		}
		*dst, rest = v, rest[n:]
	}
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
