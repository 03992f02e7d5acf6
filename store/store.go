package store

import (
	"errors"
	"time"
)

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("store: closed")

// Value is a key's committed value.
type Value struct {
	Data []byte
	// Version counts the writes to the key since it was (re)created: 1 for a new key.
	Version uint64
	// Timestamp is the partition's hybrid-logical clock stamp of the write.
	Timestamp uint64
	// ExpiresAt is when the value expires, unix milliseconds; 0 never.
	ExpiresAt uint64
}

// Expired reports whether v has expired at now.
func (v Value) Expired(now time.Time) bool {
	return v.ExpiresAt != 0 && uint64(now.UnixMilli()) >= v.ExpiresAt
}

// Read is one key's committed value, if it has one.
type Read struct {
	Value Value
	Found bool
}

// Change is one applied change: a new value, or a removal.
type Change struct {
	Key       []byte
	Value     []byte
	Remove    bool
	Version   uint64
	Timestamp uint64
	ExpiresAt uint64
}

// Value is the value c writes.
func (c Change) Val() Value {
	return Value{Data: c.Value, Version: c.Version, Timestamp: c.Timestamp, ExpiresAt: c.ExpiresAt}
}

// Batch is what Apply writes in one go.
type Batch struct {
	Changes []Change
	// Offsets are the next changelog offset to read per slot once Changes are
	// applied. Slots not named keep their offset.
	Offsets map[int32]int64
	// Ingest are the next ingest offset per slot once Changes are applied:
	// consumed ingest records and their effects are stored together.
	Ingest map[int32]int64
	// Clock, if non-zero, is the highest clock stamp applied so far; a restarted
	// partition's clock starts above it.
	Clock uint64
}

// Store is a partition's committed state. Only the partition's goroutine (or its
// restore, while the partition does not serve) writes it; Get and GetMany are
// safe from any goroutine.
type Store interface {
	Get(key []byte) (Value, bool, error)
	// GetMany reads keys at one consistent point: out[i] is keys[i].
	GetMany(keys [][]byte) ([]Read, error)
	// Apply writes the batch: all of it or, after a crash, a prefix of its
	// changes and none of its offsets (which is safe: replay is idempotent).
	Apply(Batch) error
	// Offsets returns the stored next changelog offset of every slot that has one.
	Offsets() (map[int32]int64, error)
	// IngestOffsets returns the stored next ingest offset of every slot that has one.
	IngestOffsets() (map[int32]int64, error)
	// Clock returns the highest clock stamp stored by Apply.
	Clock() (uint64, error)
	// Len counts the keys.
	Len() (int, error)
	// Each calls fn for every key in key order until fn returns false.
	Each(fn func(key []byte, v Value) bool) error
	Close() error
}
