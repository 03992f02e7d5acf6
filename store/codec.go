package store

import (
	"encoding/binary"
	"errors"
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
	metaOffsetBase = []byte("moffset/") // + 4-byte big-endian slot
	metaIngestBase = []byte("mingest/") // + 4-byte big-endian slot
)

var errCorrupt = errors.New("store: corrupt value")

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

// encodeValue lays a value out as uvarint version, uvarint timestamp, uvarint
// expiry, data.
func encodeValue(v Value) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(v.Data))
	b = binary.AppendUvarint(b, v.Version)
	b = binary.AppendUvarint(b, v.Timestamp)
	b = binary.AppendUvarint(b, v.ExpiresAt)
	return append(b, v.Data...)
}

func decodeValue(b []byte) (Value, error) {
	ver, n := binary.Uvarint(b)
	if n <= 0 {
		return Value{}, errCorrupt
	}
	b = b[n:]
	ts, n := binary.Uvarint(b)
	if n <= 0 {
		return Value{}, errCorrupt
	}
	b = b[n:]
	exp, n := binary.Uvarint(b)
	if n <= 0 {
		return Value{}, errCorrupt
	}
	return Value{Version: ver, Timestamp: ts, ExpiresAt: exp, Data: b[n:]}, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
