// Package wal is the write-ahead log as a partition's loop sees it: append
// a group of records atomically, learn its outcome, replay from offsets. A
// storage mode is one Log: the Kafka changelog (package changelog, wired in
// by package node), a partition's own disk or none (package wal/local); the
// partition core and loop know only this package.
//
//	app, err := log.NewAppender(ctx)    // fences every older writer of the partition's slots
//	offsets, err := app.Append(ctx, g)  // offsets[i] is g.Records[i]'s; err wraps ErrNotCommitted or ErrCommitUnknown
//	reached, err := log.Replay(ctx, from, apply, waiting)
package wal

import (
	"context"
	"errors"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// Outcomes of a failed Append. Every error Append returns wraps exactly one
// of ErrNotCommitted and ErrCommitUnknown.
var (
	// ErrNotCommitted: nothing of the group is or can become part of the log
	// (it was never sent for commit, or the log refused it for certain).
	ErrNotCommitted = errors.New("wal: not committed")
	// ErrCommitUnknown: the commit was sent and its outcome is unknown; the
	// group may or may not be in the log. Only a replay after fencing tells.
	ErrCommitUnknown = errors.New("wal: commit outcome unknown")
	// ErrPermanent wraps (beside ErrNotCommitted) an error that appending the
	// same records again would meet again: a record too large for the log, a
	// record the log refuses as invalid. Retrying is pointless.
	ErrPermanent = errors.New("wal: permanent error")
)

// Group is one append: the records of many requests, appended atomically (one
// Kafka transaction). Groups of one partition are appended one at a time, in
// order.
type Group struct {
	// Records go to the partition's log: changes, ingest marks, heartbeats.
	Records []kv.Record
	// DeadLetters are ingest records that cannot be applied, with the reason;
	// they go to the dead-letter topic in the same transaction.
	DeadLetters []DeadLetter
	// Forwards are ingest records produced to a slot that does not own their
	// key, moved in the same transaction to the slot that does.
	Forwards []Forward
}

// DeadLetter is an ingest record that cannot be applied, and why.
type DeadLetter struct {
	Record kv.IngestRecord
	Reason string
}

// Forward moves an ingest record to the ingest slot that owns its key.
type Forward struct {
	Slot   int32
	Record kv.IngestRecord
}

// Log is one partition's write-ahead log, in one storage mode.
type Log interface {
	// NewAppender fences every older writer of the partition's slots
	// (older partitions over the same slots, then the partition's own older
	// producers) and returns the partition's appender.
	NewAppender(ctx context.Context) (Appender, error)
	// Replay reads the log's committed records from the given next offset
	// of each slot up to its end (ReplayFunc).
	Replay(ctx context.Context, from map[int32]int64, fn func(Replayed) error, waiting func(what string)) (map[int32]int64, error)
	// Retention is the log's tombstone retention (the changelog's
	// delete.retention.ms): a store last in sync with the log longer ago is
	// not replayed onto but restored afresh. 0: nothing compacts the log
	// under the store.
	Retention() time.Duration
}

// Appender appends one partition owner's groups. Creating it fences every
// older writer of the partition's slots: once it exists, no zombie can
// commit to them. Used by one goroutine at a time.
type Appender interface {
	// Append appends g atomically and returns the offset of each of
	// g.Records in its slot. An error wraps ErrNotCommitted or ErrCommitUnknown.
	Append(ctx context.Context, g *Group) ([]int64, error)
	Close()
}

// Replayed is one read's worth of a replay: the records in offset order per
// slot, and the next offset of every slot the read advanced.
type Replayed struct {
	Records []Positioned
	Reached map[int32]int64
	Bytes   int64
	// Lag is how many offsets are left to replay after this batch.
	Lag int64
}

// Positioned is a record read back from the log, with its offset.
type Positioned struct {
	kv.Record
	Offset int64
}

// ReplayFunc reads the log's committed records from the given next offset of
// each slot up to its end at the time of the call, handing each read to fn in
// order, and returns the offsets reached. A read that makes no progress for a
// while says what it waits for to waiting (a slot and its offsets), and ""
// once it moves again; waiting is safe to call from any goroutine.
type ReplayFunc func(ctx context.Context, from map[int32]int64, fn func(Replayed) error, waiting func(what string)) (map[int32]int64, error)

// TailFunc reads the log's committed records from the given next offsets and
// hands each read to fn, without end, until ctx ends (a standby). A read's
// Lag counts what is left up to the log's committed end as the tail found it
// when it began; a tail that begins at that end hands fn a read without
// records and with Lag 0 first.
type TailFunc func(ctx context.Context, from map[int32]int64, fn func(Replayed) error) error
