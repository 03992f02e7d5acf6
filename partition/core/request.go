package core

import (
	"time"

	"github.com/sluicedb/sluice/kv"
)

// Op is what a request does.
type Op uint8

const (
	OpUpsert Op = iota + 1
	OpGet
	OpGetMany
	OpRemove
	OpIncrement
	OpIngest
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpGet:
		return "get"
	case OpGetMany:
		return "get-many"
	case OpRemove:
		return "remove"
	case OpIncrement:
		return "increment"
	case OpIngest:
		return "ingest"
	}
	return "unknown"
}

// Request is one client request (or one ingest delivery) for the core.
type Request struct {
	// Handle is the loop's: the core returns it in the request's Reply.
	Handle  any
	Op      Op
	Entries []kv.Entry // OpUpsert
	Key     []byte     // OpGet, OpRemove, OpIncrement
	Keys    [][]byte   // OpGetMany
	Delta   int64      // OpIncrement
	// TTL, for OpIncrement, replaces the key's TTL if positive; otherwise the
	// key keeps the expiry it has.
	TTL    time.Duration
	Ingest []kv.IngestRecord // OpIngest
	// Gen is the ingest consumer generation that delivered an OpIngest; a
	// delivery of an older one (retired by a re-sync) is ignored.
	Gen uint64
	// Reads[i] is the committed state of KeyAt(i) as the caller read it from
	// the store (see Read); the loop completes what Stale names before it
	// hands the request to the core.
	Reads []Read
}

// Read is a key's committed state as read from the store, and when.
type Read struct {
	kv.Read
	// OK says the key was read.
	OK bool
	// Seen is Core.Applies() before the read: the read reflects at least the
	// first Seen store writes.
	Seen uint64
}

// NumKeys is how many keys the request reads.
func (r *Request) NumKeys() int {
	switch r.Op {
	case OpUpsert:
		return len(r.Entries)
	case OpIngest:
		return len(r.Ingest)
	case OpGetMany:
		return len(r.Keys)
	}
	return 1
}

// KeyAt is the i-th key the request reads.
func (r *Request) KeyAt(i int) []byte {
	switch r.Op {
	case OpUpsert:
		return r.Entries[i].Key
	case OpIngest:
		return r.Ingest[i].Key
	case OpGetMany:
		return r.Keys[i]
	}
	return r.Key
}

// NeedsData says whether the request reads values, not only versions (a
// cache holding only a version may answer the others).
func (r *Request) NeedsData() bool {
	return r.Op == OpGet || r.Op == OpGetMany || r.Op == OpIncrement
}

// Reply is the answer to a request, to send to its caller.
type Reply struct {
	Handle any
	Err    error
	// Results: one per upserted entry (Offset -1 for one a stage dropped);
	// one for a removal or an increment.
	Results []WriteResult
	// Read: OpGet's answer; for OpRemove, Found says the key existed.
	Read kv.Read
	// Reads: OpGetMany's answers, in the order of its keys.
	Reads []kv.Read
	// Counter is OpIncrement's new value.
	Counter int64
}

// WriteResult says where one change landed.
type WriteResult struct {
	Version   uint64
	Timestamp uint64
	Slot      int32
	Offset    int64
}
