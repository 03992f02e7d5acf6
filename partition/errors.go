package partition

import (
	"errors"
	"fmt"
)

var (
	// ErrInboxFull: the partition's bounded inbox is full (ResourceExhausted).
	ErrInboxFull = errors.New("partition: inbox full, retry with backoff")
	// ErrStopped: the partition was closed (Unavailable).
	ErrStopped = errors.New("partition: stopped")
	// ErrAppendFailed wraps a changelog append failure: the request, and every
	// request after it that was not yet acknowledged, failed (Unavailable).
	ErrAppendFailed = errors.New("partition: changelog append failed; the partition is re-syncing")
	// ErrWrongPartition: a key outside the partition's slot range reached it.
	ErrWrongPartition = errors.New("partition: key outside the partition's slot range")
	// ErrDeposed: a newer owner (a higher epoch) has the partition; this one
	// never serves again (Unavailable: refresh routes).
	ErrDeposed = errors.New("partition: moved to a newer owner")
)

// RestoringError says the partition is replaying its changelog and does not
// serve yet (Unavailable).
type RestoringError struct {
	Partition uint32
	Percent   int
}

func (e *RestoringError) Error() string {
	return fmt.Sprintf("partition %d: restoring, %d%% done", e.Partition, e.Percent)
}

// VersionMismatchError fails a compare-and-set: the key's current version is
// not the one expected (Aborted). Nothing of the request was applied.
type VersionMismatchError struct {
	Key      []byte
	Expected uint64
	Current  uint64 // 0: the key does not exist
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("partition: compare-and-set of %q expected version %d, the current version is %d", e.Key, e.Expected, e.Current)
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
