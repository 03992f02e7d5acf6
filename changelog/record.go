package changelog

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// HeaderKey names the header that carries a change record's metadata.
const HeaderKey = "sluice"

const (
	formatV1 byte = 1

	flagRemove  byte = 1 << 0 // the key was removed (the Kafka value is null)
	flagIngest  byte = 1 << 1 // the change came from an ingest record: its slot and offset follow
	flagMark    byte = 1 << 2 // an ingest progress mark, not a change: slot and next offset follow
	flagExpires byte = 1 << 3 // ExpiresAt is set
	flagBeat    byte = 1 << 4 // a heartbeat: proves, by committing, that its writer still owns the slots
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

// Encode builds the Kafka record of r in topic: key = the user key (a
// reserved one for marks and heartbeats), value = the new value (null for a
// removal, so compaction can drop it), header "sluice" = flags, version,
// clock stamp, epoch, then the ingest position and expiry if any.
func Encode(topic string, r kv.Record) *kgo.Record {
	c := r.Change
	flags := byte(0)
	key, value := c.Key, c.Value
	switch r.Kind {
	case kv.KindMark:
		flags |= flagMark
		key, value = []byte(MarkKeyPrefix+strconv.Itoa(int(r.Slot))), []byte{}
	case kv.KindHeartbeat:
		flags |= flagBeat
		key, value = []byte(beatKeyPrefix+strconv.Itoa(int(r.Slot))), []byte{}
	default:
		if c.Remove {
			flags |= flagRemove
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		if r.Ingest != nil {
			flags |= flagIngest
		}
	}
	if c.ExpiresAt != 0 {
		flags |= flagExpires
	}
	meta := make([]byte, 0, 2+6*binary.MaxVarintLen64)
	meta = append(meta, formatV1, flags)
	meta = binary.AppendUvarint(meta, c.Version)
	meta = binary.AppendUvarint(meta, c.Timestamp)
	meta = binary.AppendUvarint(meta, r.Epoch)
	if flags&(flagIngest|flagMark) != 0 {
		meta = binary.AppendUvarint(meta, uint64(r.Ingest.Slot))
		meta = binary.AppendUvarint(meta, uint64(r.Ingest.Offset))
	}
	if c.ExpiresAt != 0 {
		meta = binary.AppendUvarint(meta, c.ExpiresAt)
	}
	return &kgo.Record{Topic: topic, Partition: r.Slot, Key: key, Value: value, Headers: []kgo.RecordHeader{{Key: HeaderKey, Value: meta}}}
}

// Decode reads a change record back.
func Decode(rec *kgo.Record) (kv.Record, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: slot %d offset %d: %s", ErrBadRecord, rec.Partition, rec.Offset, why)
	}
	var meta []byte
	found := false
	for _, h := range rec.Headers {
		if h.Key == HeaderKey {
			meta, found = h.Value, true
		}
	}
	if !found {
		return kv.Record{}, bad(fmt.Sprintf("no %q header", HeaderKey))
	}
	if len(meta) < 2 || meta[0] != formatV1 {
		return kv.Record{}, bad("unknown format")
	}
	flags := meta[1]
	if flags&^knownFlags != 0 || (flags&flagMark != 0 && flags&(flagIngest|flagRemove|flagBeat) != 0) || (flags&flagBeat != 0 && flags&(flagIngest|flagRemove) != 0) {
		return kv.Record{}, bad(fmt.Sprintf("bad flags %#x", flags))
	}
	r := kv.Record{Kind: kv.KindChange, Slot: rec.Partition}
	switch {
	case flags&flagMark != 0:
		r.Kind = kv.KindMark
	case flags&flagBeat != 0:
		r.Kind = kv.KindHeartbeat
	}
	c := &r.Change
	c.Key, c.Remove = rec.Key, flags&flagRemove != 0
	fields := []*uint64{&c.Version, &c.Timestamp, &r.Epoch}
	var ingestSlot, ingestOffset uint64
	if flags&(flagIngest|flagMark) != 0 {
		fields = append(fields, &ingestSlot, &ingestOffset)
	}
	if flags&flagExpires != 0 {
		fields = append(fields, &c.ExpiresAt)
	}
	rest := meta[2:]
	for _, dst := range fields {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return kv.Record{}, bad("truncated header")
		}
		*dst, rest = v, rest[n:]
	}
	if ingestOffset > math.MaxInt64 || ingestSlot > math.MaxInt32 {
		return kv.Record{}, bad("ingest position out of range")
	}
	if flags&(flagIngest|flagMark) != 0 {
		r.Ingest = &kv.Source{Slot: int32(ingestSlot), Offset: int64(ingestOffset)}
	}
	if len(rec.Key) == 0 {
		return kv.Record{}, bad("empty key")
	}
	if r.Kind != kv.KindChange {
		c.Key = nil
	} else if !c.Remove {
		c.Value = rec.Value
		if c.Value == nil {
			c.Value = []byte{}
		}
	}
	return r, nil
}

// Decoded turns a fetch of the changelog into the log's records.
func Decoded(b kafkaread.Step) (wal.Replayed, error) {
	out := wal.Replayed{Records: make([]wal.Positioned, len(b.Records)), Reached: b.Reached, Bytes: b.Bytes, Lag: b.Lag}
	for i, rec := range b.Records {
		r, err := Decode(rec)
		if err != nil {
			return wal.Replayed{}, err
		}
		out.Records[i] = wal.Positioned{Record: r, Offset: rec.Offset}
	}
	return out, nil
}
