package store

import (
	"encoding/binary"
	"errors"

	"github.com/sluicedb/sluice/kv"
)

// Keys in the engine: 'd' + user key for data; 'm' + name for sluice's own
// metadata, the way badger reserves "!badger!". User keys can never collide
// with metadata.
const (
	dataPrefix = 'd'
	metaPrefix = 'm'
)

var (
	metaClock      = []byte("mclock")
	metaSyncedAt   = []byte("msynced")
	metaOffsetBase = []byte("moffset/") // + 4-byte big-endian slot
	metaIngestBase = []byte("mingest/") // + 4-byte big-endian slot
)

// ErrCorrupt wraps a value the store cannot decode: the disk lost or
// mangled what was written (a page a failed sync or a power cut dropped).
var ErrCorrupt = errors.New("store: corrupt value")

var errCorrupt = ErrCorrupt

func dataKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = dataPrefix
	copy(k[1:], key)
	return k
}

func offsetKey(slot int32) []byte { return slotKey(metaOffsetBase, slot) }

func ingestKey(slot int32) []byte { return slotKey(metaIngestBase, slot) }

func slotKey(base []byte, slot int32) []byte {
	k := make([]byte, len(base)+4)
	copy(k, base)
	binary.BigEndian.PutUint32(k[len(base):], uint32(slot))
	return k
}

// encodeRead lays a key's state out: a live value as uvarint version (never
// 0), uvarint timestamp, uvarint expiry, data; a tombstone as a 0 byte,
// uvarint version, uvarint timestamp.
func encodeRead(r kv.Read) []byte {
	if !r.Found {
		b := make([]byte, 1, 1+2*binary.MaxVarintLen64)
		b = binary.AppendUvarint(b, r.Value.Version)
		return binary.AppendUvarint(b, r.Value.Timestamp)
	}
	return encodeValue(r.Value)
}

func decodeRead(b []byte) (kv.Read, error) {
	if len(b) > 0 && b[0] == 0 {
		ver, n := binary.Uvarint(b[1:])
		if n <= 0 {
			return kv.Read{}, errCorrupt
		}
		ts, m := binary.Uvarint(b[1+n:])
		if m <= 0 {
			return kv.Read{}, errCorrupt
		}
		return kv.Read{Value: kv.Value{Version: ver, Timestamp: ts}}, nil
	}
	v, err := decodeValue(b)
	return kv.Read{Value: v, Found: err == nil}, err
}

func encodeValue(v kv.Value) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(v.Data))
	b = binary.AppendUvarint(b, v.Version)
	b = binary.AppendUvarint(b, v.Timestamp)
	b = binary.AppendUvarint(b, v.ExpiresAt)
	return append(b, v.Data...)
}

func decodeValue(b []byte) (kv.Value, error) {
	ver, n := binary.Uvarint(b)
	if n <= 0 || ver == 0 {
		return kv.Value{}, errCorrupt
	}
	b = b[n:]
	ts, n := binary.Uvarint(b)
	if n <= 0 {
		return kv.Value{}, errCorrupt
	}
	b = b[n:]
	exp, n := binary.Uvarint(b)
	if n <= 0 {
		return kv.Value{}, errCorrupt
	}
	return kv.Value{Version: ver, Timestamp: ts, ExpiresAt: exp, Data: b[n:]}, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
