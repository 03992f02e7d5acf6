package store

import (
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
// unfinished one), but it is bounded: 15 % of a memtable (1.2 MiB with
// sluice's 8 MiB memtables) and as many entries as fit. A batch past that is
// written as an intent first: the whole batch as one value under a reserved
// key, synced; then its entries; then the intent is removed. A crash between
// leaves the intent, which OpenBadger applies again (replaying whole-state
// changes is idempotent) before anyone reads.

// metaIntent holds the batch being written past one transaction's bound.
var metaIntent = []byte("mintent")

// DurableBadgerOptions are BadgerOptions for a store that is its own
// write-ahead log: every badger write is synced before it returns (badger
// syncs its memtable's log and value log after each write), so what
// ApplyAtomic returned is on the disk and everything before it too.
//
// Values stay in the LSM tree up to badger's largest threshold (1 MiB, which
// every value of an Upsert is under but for one within a few bytes of it):
// badger returns a failed sync of its memtable's log, but only logs a failed
// sync of its value log (value.go, write's deferred Sync) and acknowledges
// the write, whose value may then not be on the disk.
func DurableBadgerOptions(dir string) badger.Options {
	return BadgerOptions(dir).WithSyncWrites(true).WithValueThreshold(1 << 20)
}

// ApplyAtomic writes b whole or, after a crash at any point, not at all: in
// one badger transaction when it fits, else through an intent. On a store
// opened with DurableBadgerOptions it returns once b is on the disk.
func (s *Badger) ApplyAtomic(b kv.Batch) error {
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

// applyByIntent writes the intent, then b, then removes the intent; each step
// durable before the next on a synced store.
func (s *Badger) applyByIntent(b kv.Batch) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Set(metaIntent, encodeBatch(b)); err != nil {
		return fmt.Errorf("store: apply: %w: writing the intent: %w", ErrNotWritten, err)
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store: apply: writing the intent: %w", err)
	}
	return s.finishIntent(b)
}

func (s *Badger) finishIntent(b kv.Batch) error {
	if err := s.Apply(b); err != nil {
		return err
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(metaIntent) }); err != nil {
		return fmt.Errorf("store: apply: removing the intent: %w", err)
	}
	return nil
}

// recoverIntent applies again the batch a crash left half-written.
func (s *Badger) recoverIntent() error {
	var raw []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaIntent)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		raw, err = item.ValueCopy(nil)
		return err
	})
	if err != nil || raw == nil {
		return err
	}
	b, err := decodeBatch(raw)
	if err != nil {
		return fmt.Errorf("store: the intent left by a crash: %w", err)
	}
	return s.finishIntent(b)
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
func setBatch(w entrySetter, b kv.Batch) error {
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

// ErrNotWritten wraps an ApplyAtomic error raised before anything was handed
// to badger: nothing of the batch is or can become part of the store, and
// writing it again would fail again.
var ErrNotWritten = errors.New("store: batch refused before writing")

// RecoverIntent finishes a batch that a failed ApplyAtomic left half-written
// (OpenBadger does it after a crash): the store is whole again.
func (s *Badger) RecoverIntent() error { return s.recoverIntent() }
