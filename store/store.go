package store

import (
	"errors"

	"github.com/sluicedb/sluice/kv"
)

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("store: closed")

// ErrUnsynced refuses a read that may have seen a write whose sync failed:
// what it read may not be on the disk, and a restart may take it back.
var ErrUnsynced = errors.New("store: the read may have seen a write whose sync to the disk failed")

// Store is a partition's committed state. Only the partition's goroutine (or its
// restore, while the partition does not serve) writes it; reads are safe from
// any goroutine.
//
// A read returns the stored state as it is: a removed key is absent with its
// tombstone's version, an expired value is returned with its ExpiresAt (the
// reader decides, with kv.Read.Live, at its own time). Both are kept for
// kv.TombstoneRetention so versions keep growing across removals.
type Store interface {
	Get(key []byte) (kv.Read, error)
	// GetMany reads keys at one consistent point: out[i] is keys[i].
	GetMany(keys [][]byte) ([]kv.Read, error)
	// GetManyWithin is GetMany that copies no more values than fit in b:
	// it reads keys in order at one point and stops before the first value
	// that does not fit, so out[i] is keys[i] for i < len(out) and the keys
	// from len(out) on were not read. Missing and removed keys take nothing
	// from b, nor do values expired at the read's time, which are read as
	// absent (version and expiry kept) without their bytes. A nil b reads
	// every key as stored.
	GetManyWithin(keys [][]byte, b *ReadBudget) ([]kv.Read, error)
	// Apply writes the batch: all of it or, after a crash, a prefix of its
	// changes and none of its offsets (which is safe: replay is idempotent).
	Apply(kv.Write) error
	// Offsets returns the stored next log offset of every slot that has one.
	Offsets() (map[int32]int64, error)
	// IngestOffsets returns the stored next ingest offset of every slot that has one.
	IngestOffsets() (map[int32]int64, error)
	// Clock returns the highest clock stamp stored by Apply.
	Clock() (uint64, error)
	// SyncedAt returns the last kv.Write.SyncedAt stored by Apply (unix
	// milliseconds), 0 if none was: when the store was last known to hold
	// its slots' log up to the log's end.
	SyncedAt() (int64, error)
	// Clear empties the store: keys, tombstones, offsets and SyncedAt. The
	// clock stays, so stamps never go back. For a store too stale to replay
	// onto; the partition's goroutine (or its restore) must be its only writer.
	Clear() error
	// Len counts the live keys (not removed, not expired).
	Len() (int, error)
	// Each calls fn for every live key in key order until fn returns false.
	Each(fn func(key []byte, v kv.Value) bool) error
	// Scan calls fn, in key order, for every live key (not removed, not
	// expired) in [start, end) until fn returns false; an empty end is no
	// upper bound. It reads at one point (Badger: one read transaction),
	// however long fn takes, and holds only the entry it hands to fn, which
	// fn may keep.
	Scan(start, end []byte, fn func(key []byte, v kv.Value) bool) error
	Close() error
}
