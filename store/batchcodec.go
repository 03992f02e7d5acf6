package store

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicedb/sluice/kv"
)

// The intent's encoding of a kv.Write: a format byte, then uvarints and
// length-prefixed bytes:
//
//	changes: count, then per change: key, flags (1 = remove), version,
//	         timestamp, expires-at, value
//	offsets, ingest: count, then slot and offset pairs
//	clock
const batchFormat = 1

func encodeBatch(b kv.Write) []byte {
	n := 16
	for _, c := range b.Changes {
		n += len(c.Key) + len(c.Value) + 5*binary.MaxVarintLen64
	}
	out := make([]byte, 1, n+(len(b.Offsets)+len(b.Ingest))*2*binary.MaxVarintLen64)
	out[0] = batchFormat
	out = binary.AppendUvarint(out, uint64(len(b.Changes)))
	for _, c := range b.Changes {
		out = appendBytes(out, c.Key)
		var flags uint64
		if c.Remove {
			flags = 1
		}
		out = binary.AppendUvarint(out, flags)
		out = binary.AppendUvarint(out, c.Version)
		out = binary.AppendUvarint(out, c.Timestamp)
		out = binary.AppendUvarint(out, c.ExpiresAt)
		out = appendBytes(out, c.Value)
	}
	for _, m := range []map[int32]int64{b.Offsets, b.Ingest} {
		out = binary.AppendUvarint(out, uint64(len(m)))
		for slot, off := range m {
			out = binary.AppendUvarint(out, uint64(uint32(slot)))
			out = binary.AppendUvarint(out, uint64(off))
		}
	}
	return binary.AppendUvarint(out, b.Clock)
}

func appendBytes(out, b []byte) []byte {
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

// batchReader reads an encoded batch; the first error sticks.
type batchReader struct {
	b   []byte
	err error
}

func (r *batchReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *batchReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// count reads a count of items each at least min bytes long, refusing one the
// rest of the input cannot hold (a corrupt count must not allocate).
func (r *batchReader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.err = errCorrupt
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func decodeBatch(raw []byte) (kv.Write, error) {
	if len(raw) == 0 || raw[0] != batchFormat {
		return kv.Write{}, fmt.Errorf("%w: unknown batch format", errCorrupt)
	}
	r := &batchReader{b: raw[1:]}
	var b kv.Write
	if n := r.count(7); n > 0 {
		b.Changes = make([]kv.Change, n)
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		c.Key = r.bytes()
		c.Remove = r.uvarint()&1 == 1
		c.Version, c.Timestamp, c.ExpiresAt = r.uvarint(), r.uvarint(), r.uvarint()
		c.Value = r.bytes()
		if c.Remove {
			c.Value = nil
		}
	}
	b.Offsets, b.Ingest = map[int32]int64{}, map[int32]int64{}
	for _, m := range []map[int32]int64{b.Offsets, b.Ingest} {
		for range r.count(2) {
			slot, off := r.uvarint(), r.uvarint()
			m[int32(uint32(slot))] = int64(off)
		}
	}
	b.Clock = r.uvarint()
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return b, r.err
}
