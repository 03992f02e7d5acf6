package kv

// Change is one change to a key: a new value, or its removal. It is the one
// change type of sluice: the partition computes it, the write-ahead log
// records it (with a Meta), the store applies it.
type Change struct {
	Key   []byte
	Value []byte // nil when Remove
	// Remove deletes the key; Version is then the tombstone's version.
	Remove    bool
	Version   uint64
	Timestamp uint64
	// ExpiresAt is when the value expires, unix milliseconds; 0 never.
	ExpiresAt uint64
}

// Val is the value c writes (a removal's: its tombstone).
func (c Change) Val() Value {
	return Value{Data: c.Value, Version: c.Version, Timestamp: c.Timestamp, ExpiresAt: c.ExpiresAt}
}

// Read is the state c leaves the key in.
func (c Change) Read() Read {
	if c.Remove {
		return Read{Value: Value{Version: c.Version, Timestamp: c.Timestamp}}
	}
	return Read{Value: c.Val(), Found: true}
}

// Kind says what a write-ahead log record is.
type Kind uint8

const (
	// KindChange changes a key.
	KindChange Kind = iota + 1
	// KindMark records, in the same transaction as the changes an ingest batch
	// caused, the next ingest offset of one slot; it changes no key.
	KindMark
	// KindHeartbeat changes nothing: a partition commits one to prove it still
	// owns its slots before it answers a read from committed state.
	KindHeartbeat
)

func (k Kind) String() string {
	switch k {
	case KindChange:
		return "change"
	case KindMark:
		return "mark"
	case KindHeartbeat:
		return "heartbeat"
	}
	return "unknown"
}

// Record is one record of a partition's write-ahead log: a Change (for
// KindChange), with what the log keeps beside it.
type Record struct {
	Kind Kind
	// Slot is the log slot the record goes to: the key's slot for a change,
	// the ingest slot for a mark, the partition's first slot for a heartbeat.
	Slot   int32
	Change Change
	// Epoch is the writer's epoch: a restore refuses records of a newer one.
	Epoch uint64
	// Ingest, for a change, is the ingest record it came from (if any); for a
	// mark, Offset is the next ingest offset of Slot.
	Ingest *Source
}

// Source is a position in the ingest topic.
type Source struct {
	Slot   int32
	Offset int64
}

// Write is what a store applies in one write: changes and how far into the
// log they reach, so state and "how far am I" never disagree.
type Write struct {
	Changes []Change
	// Offsets are the next log offset to read per slot once Changes are
	// applied. Slots not named keep their offset.
	Offsets map[int32]int64
	// Ingest are the next ingest offset per slot once Changes are applied:
	// consumed ingest records and their effects are stored together.
	Ingest map[int32]int64
	// Clock, if non-zero, is the highest clock stamp applied so far; a
	// restarted partition's clock starts above it.
	Clock uint64
	// SyncedAt, if non-zero, is when (unix milliseconds, the writer's wall
	// clock) the store was last known to hold every record of its slots
	// before the log's end: a restore refuses to replay onto a store whose
	// SyncedAt is older than the log's tombstone retention.
	SyncedAt int64
}
