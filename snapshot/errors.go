package snapshot

import "errors"

var (
	// ErrCorrupt wraps a snapshot that fails verification.
	ErrCorrupt = errors.New("snapshot: corrupt")
	// ErrOutsideRoot wraps a snapshot path that leaves the snapshot root (an
	// absolute path elsewhere, a .. or a symlink out of it).
	ErrOutsideRoot = errors.New("snapshot: path outside the snapshot root")
	// ErrStalled wraps a blob store call that made no progress for the
	// bucket's timeout and was cancelled.
	ErrStalled = errors.New("snapshot: blob store made no progress")
	// ErrCancelled wraps a snapshot (or its upload) stopped by its caller, as
	// when its partition is released.
	ErrCancelled = errors.New("snapshot: cancelled")
	// ErrStoreDirty wraps a restore that failed after loading part of a
	// snapshot and could not empty the store again: the store must not be
	// replayed onto as it is.
	ErrStoreDirty = errors.New("snapshot: store holds part of a snapshot")
	// ErrMismatch wraps a snapshot of another cluster, partition, range or
	// slot count than the restore's: never loaded.
	ErrMismatch = errors.New("snapshot: not of this partition")
	// ErrTooOld wraps a snapshot older than the changelog keeps tombstones
	// (delete.retention.ms): never loaded, removals since may be lost.
	ErrTooOld = errors.New("snapshot: older than the changelog's tombstone retention")
)
