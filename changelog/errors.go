package changelog

import (
	"errors"
	"fmt"
)

var (
	// ErrBadRecord wraps every decode failure of a change record.
	ErrBadRecord = errors.New("changelog: bad record")
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
