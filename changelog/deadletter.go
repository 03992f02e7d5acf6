package changelog

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// Dead-letter header names.
const (
	HeaderError        = "error"
	HeaderSourceSlot   = "source-slot"
	HeaderSourceOffset = "source-offset"
	// HeaderTruncated is set on the stub of a record too large to copy whole:
	// its value is "key=N value=N headers=N" (bytes), and only the first
	// StubKeyBytes of the key are kept.
	HeaderTruncated = "truncated"
)

// MaxDeadLetterCopy bounds the ingest record (key, value and headers) copied
// whole into the dead-letter topic; a larger one leaves a stub, so a poison
// pill can never make its own dead letter too large to append. StubKeyBytes
// of its key are kept.
const (
	MaxDeadLetterCopy = kv.MaxBatchBytes
	StubKeyBytes      = 256
)

// DeadLetter is the DLQ record of d: a copy of the ingest record (key, value,
// headers) with why and where it came from, or a bounded stub of it.
func DeadLetter(topic string, d wal.DeadLetter) *kgo.Record {
	r := d.Record
	reason := d.Reason
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	tail := []kgo.RecordHeader{
		{Key: HeaderError, Value: []byte(reason)},
		{Key: HeaderSourceSlot, Value: []byte(strconv.Itoa(int(r.Slot)))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	}
	if r.Size() > MaxDeadLetterCopy {
		hb := r.Size() - len(r.Key) - len(r.Value)
		key := r.Key
		if len(key) > StubKeyBytes {
			key = key[:StubKeyBytes]
		}
		sizes := "key=" + strconv.Itoa(len(r.Key)) + " value=" + strconv.Itoa(len(r.Value)) + " headers=" + strconv.Itoa(hb)
		return &kgo.Record{Topic: topic, Partition: 0, Key: key, Headers: append(tail, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(sizes)})}
	}
	h := make([]kgo.RecordHeader, 0, len(r.Headers)+len(tail))
	for _, x := range r.Headers {
		h = append(h, kgo.RecordHeader{Key: x.Key, Value: x.Value})
	}
	value := r.Value
	if r.Remove {
		value = nil
	}
	return &kgo.Record{Topic: topic, Partition: 0, Key: r.Key, Value: value, Headers: append(h, tail...)}
}
