package pipeline

import (
	"errors"
	"fmt"
)

// Limits of one request.
const (
	MaxKeyBytes   = 4 << 10 // one key
	MaxBatchBytes = 1 << 20 // all keys and values of one Upsert
)

// ErrInvalid wraps every validation failure; it maps to InvalidArgument.
var ErrInvalid = errors.New("invalid argument")

// Entry is one key and its new value.
type Entry struct {
	Key   []byte
	Value []byte
}

// ValidateKey checks one key.
func ValidateKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: key of %d bytes is over the limit of %d bytes", ErrInvalid, len(key), MaxKeyBytes)
	}
	return nil
}

// ValidateBatch checks an Upsert's entries: at least one, every key valid,
// keys and values together within MaxBatchBytes.
func ValidateBatch(entries []Entry) error {
	if len(entries) == 0 {
		return fmt.Errorf("%w: upsert with no entries", ErrInvalid)
	}
	total := 0
	for i, e := range entries {
		if err := ValidateKey(e.Key); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		total += len(e.Key) + len(e.Value)
	}
	if total > MaxBatchBytes {
		return fmt.Errorf("%w: batch of %d bytes of keys and values is over the limit of %d bytes (1 MiB)", ErrInvalid, total, MaxBatchBytes)
	}
	return nil
}
