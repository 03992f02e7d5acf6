package kv

import "time"

// TombstoneRetention is how long a removed or expired key keeps its version
// in a store: as long as the changelog keeps tombstones (its
// delete.retention.ms), so a replay and a store agree on every version.
const TombstoneRetention = 7 * 24 * time.Hour

// Value is a key's committed value.
type Value struct {
	Data []byte
	// Version counts the writes to the key, removals included: 1 for a key
	// never written before. A removed key keeps its version (as a tombstone)
	// for the changelog's delete retention, so the next write continues from
	// it and a compare-and-set can never mistake a re-created key for the one
	// it read (no ABA).
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

// Read is one key's committed state. Found is false for a key that is absent:
// never written, removed or expired; Value.Version is then the version its
// tombstone keeps (0 if none), which the next write continues from.
type Read struct {
	Value Value
	Found bool
}

// Live returns r as a reader sees it at now: an expired value is absent but
// keeps its version.
func (r Read) Live(now time.Time) Read {
	if r.Found && r.Value.Expired(now) {
		return Read{Value: Value{Version: r.Value.Version}}
	}
	return r
}
