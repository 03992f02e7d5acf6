package changelog

import (
	"errors"
)

var (
	// ErrBadRecord wraps every decode failure of a change record.
	ErrBadRecord = errors.New("changelog: bad record")
)
