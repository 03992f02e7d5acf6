package kv

import (
	"errors"
	"fmt"
	"time"
)

// Limits of one request.
const (
	MaxKeyBytes   = 4 << 10 // one key
	MaxBatchBytes = 1 << 20 // all keys and values of one Upsert; key+value+headers of one ingest record
)

// ErrInvalid wraps every validation failure; it maps to InvalidArgument.
var ErrInvalid = errors.New("invalid argument")

// Entry is one key and its new value.
type Entry struct {
	Key   []byte
	Value []byte
	// TTL, if positive, expires the value that long after the write.
	TTL time.Duration
	// Expected, if set, is the version the key must have for the write to
	// apply (0: the key must not exist).
	Expected *uint64
}

// ValidateKey checks one key: not empty, at most MaxKeyBytes, and not starting
// with byte 0x00, which sluice reserves for its own records.
func ValidateKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: key of %d bytes is over the limit of %d bytes", ErrInvalid, len(key), MaxKeyBytes)
	}
	if key[0] == 0 {
		return fmt.Errorf("%w: keys starting with byte 0x00 are reserved for sluice", ErrInvalid)
	}
	return nil
}

// ValidateIngest checks an ingest record on its own: its key, and its key,
// value and headers together within MaxBatchBytes.
func ValidateIngest(r IngestRecord) error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	if n := r.Size(); n > MaxBatchBytes {
		return fmt.Errorf("%w: key, value and headers of %d bytes are over the limit of %d bytes (1 MiB)", ErrInvalid, n, MaxBatchBytes)
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
		if e.TTL < 0 {
			return fmt.Errorf("entry %d: %w: negative TTL", i, ErrInvalid)
		}
		total += len(e.Key) + len(e.Value)
	}
	if total > MaxBatchBytes {
		return fmt.Errorf("%w: batch of %d bytes of keys and values is over the limit of %d bytes (1 MiB)", ErrInvalid, total, MaxBatchBytes)
	}
	return nil
}
