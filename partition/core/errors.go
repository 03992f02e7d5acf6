package core

import (
	"errors"
	"fmt"
)

var (
	// ErrInboxFull: the partition's bounded inbox or byte budget is full
	// (ResourceExhausted; not applied).
	ErrInboxFull = errors.New("partition: inbox full, retry with backoff")
	// ErrStopped: the partition was closed (Unavailable; not applied unless
	// it also wraps wal.ErrCommitUnknown).
	ErrStopped = errors.New("partition: stopped")
	// ErrAppendFailed wraps a changelog append failure: the request, and every
	// request after it that was not yet acknowledged, failed (Unavailable).
	// With wal.ErrCommitUnknown the request may have been applied.
	ErrAppendFailed = errors.New("partition: changelog append failed; the partition is re-syncing")
	// ErrWrongPartition: a key outside the partition's slot range reached it.
	ErrWrongPartition = errors.New("partition: key outside the partition's slot range")
	// ErrDeposed: a newer owner (a higher epoch) has the partition; this one
	// never serves again (Unavailable: refresh routes).
	ErrDeposed = errors.New("partition: moved to a newer owner")
	// ErrUnknownOp: a request of an operation the core does not know.
	ErrUnknownOp = errors.New("partition: unknown operation")
)

// RestoringError says the partition is replaying its changelog and does not
// serve yet (Unavailable).
type RestoringError struct {
	Partition uint32
	Percent   int
	// Waiting, if set, says what the restore waits for (a slot of the log).
	Waiting string
}

func (e *RestoringError) Error() string {
	msg := fmt.Sprintf("partition %d: restoring, %d%% done", e.Partition, e.Percent)
	if e.Waiting != "" {
		msg += " (" + e.Waiting + ")"
	}
	return msg
}

// VersionMismatchError fails a compare-and-set: the key's current version is
// not the one expected (Aborted). Nothing of the request was applied.
type VersionMismatchError struct {
	Key      []byte
	Expected uint64
	Current  uint64 // 0: the key does not exist
	// Entry, if >= 0, is the earlier entry of the same request whose write
	// made Current: a request's entries see each other in order.
	Entry int
}

func (e *VersionMismatchError) Error() string {
	msg := fmt.Sprintf("partition: compare-and-set of %q expected version %d, the current version is %d", e.Key, e.Expected, e.Current)
	if e.Current == 0 {
		msg = fmt.Sprintf("partition: compare-and-set of %q expected version %d, the key does not exist", e.Key, e.Expected)
	}
	if e.Entry >= 0 {
		msg += fmt.Sprintf(" (written by entry %d of this request)", e.Entry)
	}
	return msg
}

// NotIntegerError: Increment of a key whose value is not a decimal int64, or
// an increment that would overflow (FailedPrecondition).
type NotIntegerError struct {
	Key    []byte
	Reason string
}

func (e *NotIntegerError) Error() string {
	return fmt.Sprintf("partition: cannot increment %q: %s", e.Key, e.Reason)
}
