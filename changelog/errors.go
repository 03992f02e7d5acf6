package changelog

import (
	"errors"
	"fmt"
)

var (
	// ErrBadRecord wraps every decode failure of a change record.
	ErrBadRecord = errors.New("changelog: bad record")
	// ErrNotCommitted wraps an Append failure that certainly committed nothing:
	// the records may be tried again.
	ErrNotCommitted = errors.New("changelog: not committed")
	// ErrCommitUnknown wraps an Append failure after the commit was sent whose
	// outcome is unknown: the records may or may not be in the log.
	ErrCommitUnknown = errors.New("changelog: commit outcome unknown")
)

// OffsetGoneError says a slot no longer holds the offset a replay must start at:
// the log was deleted or truncated past it. Replay never starts later than asked.
type OffsetGoneError struct {
	Topic    string
	Slot     int32
	Needed   int64
	LogStart int64
}

func (e *OffsetGoneError) Error() string {
	return fmt.Sprintf("changelog: %s slot %d needs offset %d but the log starts at %d", e.Topic, e.Slot, e.Needed, e.LogStart)
}
