package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
)

// Whole-or-absent writes, for a store that is its own write-ahead log
// (package wal/disk). Badger's Apply above may split a batch into several
// badger transactions, which is fine when a log elsewhere (Kafka) can replay
// what a crash cut; a store that is the log needs every batch whole or not at
// all. One badger transaction is atomic across crashes (its replay drops an
// unfinished one), but it is bounded: 15 % of a memtable (1.2 MiB with the
// 8 MiB memtables of DurableBadgerOptions) and as many entries as fit. A batch past that is
// written as an intent first: the whole batch under reserved keys, synced;
// then its entries; then the intent is removed. A crash between leaves the
// intent, which OpenBadger applies again (replaying whole-state changes is
// idempotent) before anyone reads (intent.go).

// DurableBadgerOptions are BadgerOptions for a store that is its own
// write-ahead log: every badger write is synced before it returns (badger
// syncs its memtable's log after each write), so what
// ApplyAtomic returned is on the disk and everything before it too.
//
// Values stay in the LSM tree up to badger's largest threshold (1 MiB):
// badger returns a failed sync of its memtable's log, but only logs a failed
// sync of its value log (value.go, write's deferred Sync, with SyncWrites its
// DB.Sync does not sync the value log either) and acknowledges the write,
// whose value may then not be on the disk; after a restart its pointer leads
// to whatever the disk held (issue D1: "store: corrupt value" for good). So
// nothing ApplyAtomic writes may reach the value log: a value whose encoded
// form is 1 MiB or more is refused (ErrValueTooLarge), and an intent is
// written in chunks under the threshold.
//
// Its memtables stay at 8 MiB (BadgerOptions' are 4 MiB): badger refuses a
// value threshold over a transaction's bound, 15 % of a memtable, and a
// 1 MiB value in the LSM needs memtables of at least 7 MiB.
func DurableBadgerOptions(dir string) badger.Options {
	return BadgerOptions(dir).WithSyncWrites(true).WithValueThreshold(1 << 20).
		WithMemTableSize(8 << 20)
}

// ApplyAtomic writes b whole or, after a crash at any point, not at all: in
// one badger transaction when it fits, else through an intent. On a store
// opened with DurableBadgerOptions it returns once b is on the disk.
func (s *Badger) ApplyAtomic(b kv.Write) error {
	if err := inLSM(b); err != nil {
		return err
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	err := setBatch(txn, b)
	if errors.Is(err, badger.ErrTxnTooBig) {
		txn.Discard()
		return s.applyByIntent(b)
	}
	if err != nil {
		return fmt.Errorf("store: apply: %w: %w", ErrNotWritten, err)
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store: apply: %w", err)
	}
	return nil
}

// entrySetter is what a batch is written into: a badger transaction or a
// write batch.
type entrySetter interface {
	SetEntry(e *badger.Entry) error
}

// setBatch sets b's changes, then its offsets, ingest offsets and clock.
// Offsets go last: if the batch is split into several badger transactions
// and a crash cuts it short, the stored offsets still point before every
// change that was lost.
func setBatch(w entrySetter, b kv.Write) error {
	for _, c := range b.Changes {
		e := badger.NewEntry(dataKey(c.Key), encodeRead(c.Read()))
		e.ExpiresAt = retainUntil(c) // badger drops the entry then
		if err := w.SetEntry(e); err != nil {
			return err
		}
	}
	for slot, off := range b.Offsets {
		if err := w.SetEntry(badger.NewEntry(offsetKey(slot), u64(uint64(off)))); err != nil {
			return err
		}
	}
	for slot, off := range b.Ingest {
		if err := w.SetEntry(badger.NewEntry(ingestKey(slot), u64(uint64(off)))); err != nil {
			return err
		}
	}
	if b.Clock != 0 {
		if err := w.SetEntry(badger.NewEntry(metaClock, u64(b.Clock))); err != nil {
			return err
		}
	}
	return nil
}

// DropAll empties the store (a half-loaded snapshot must not be taken for a
// whole one).
func (s *Badger) DropAll() error { return s.db.DropAll() }

// MaxLSMValue is badger's largest value threshold: an entry's value of this
// size or more goes to the value log.
const MaxLSMValue = 1 << 20

// ErrValueTooLarge wraps (with ErrNotWritten and kv.ErrInvalid, so a client
// gets InvalidArgument) a value ApplyAtomic refuses: its encoded form would
// reach badger's value log, whose failed sync badger does not return.
var ErrValueTooLarge = errors.New("store: value too large for a store that is its own write-ahead log")

// inLSM refuses a batch with a value whose encoded form (value, version,
// timestamp, expiry) would go to badger's value log.
func inLSM(b kv.Write) error {
	for _, c := range b.Changes {
		if c.Remove {
			continue
		}
		n := uvarintLen(c.Version) + uvarintLen(c.Timestamp) + uvarintLen(c.ExpiresAt) + len(c.Value)
		if n >= MaxLSMValue {
			return fmt.Errorf("%w: %w: %w: the value of key %q is %d bytes, %d with its version, timestamp and expiry; "+
				"a store that is its own write-ahead log (--wal disk) keeps each under %d bytes (1 MiB, badger's value threshold), so at most %d bytes of value here",
				ErrNotWritten, kv.ErrInvalid, ErrValueTooLarge, c.Key, len(c.Value), n, MaxLSMValue, MaxLSMValue-1-(n-len(c.Value)))
		}
	}
	return nil
}

func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }

// ErrNotWritten wraps an ApplyAtomic error raised before anything was handed
// to badger: nothing of the batch is or can become part of the store, and
// writing it again would fail again.
var ErrNotWritten = errors.New("store: batch refused before writing")

// RecoverIntent finishes a batch that a failed ApplyAtomic left half-written
// (OpenBadger does it after a crash): the store is whole again.
func (s *Badger) RecoverIntent() error { return s.recoverIntent() }
