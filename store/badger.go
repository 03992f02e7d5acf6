package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/kv"
)

// BadgerOptions are badger's options sized for many small databases on one
// node: one Badger DB per partition. Badger's defaults (64 MiB memtables, five
// of them, a 256 MiB block cache) would put 16 idle partitions far past the
// node's 512 MiB budget; these keep one open DB at a few MiB. Kafka is the
// write-ahead log, so badger does not fsync each write. Tables are not
// compressed: a read then needs no block cache and no decompression (gets
// ran 9 % faster under `sluice bench` than with snappy and an 8 MiB cache).
//
// Memtables of 4 MiB and badger's 2 MiB tables (BENCHMARKS.md, "Memory
// with 1 M keys"): a node's heap holds each partition's memtables (an arena
// of the memtable's size and 30 % more, twice while one flushes) and, in
// badger's pool of table builders (up to 8 a DB, kept while the DB keeps
// writing), buffers of twice the table size, doubled until the largest
// table built fits. With 8 MiB memtables a level-0 table (~5 MiB) outgrew a
// builder's first 4 MiB and its buffers grew to 12 MiB: the pools held
// 180 MiB of a 4-partition node after 1 M writes. A level-0 table of a
// 4 MiB memtable (~2.6 MiB) fits the first 4 MiB. Three level-0 tables
// before a compaction (not two) keep the bytes each level-0 compaction
// merges, and so the write CPU, where 8 MiB memtables had them; 2 MiB
// memtables cost 20–45 % more CPU a written key.
func BadgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false).
		WithMemTableSize(4 << 20).
		WithBaseTableSize(2 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(12).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(64 << 10).
		WithNumCompactors(2).
		WithDetectConflicts(false)
}

// Badger is a Store on a badger database.
type Badger struct {
	db *badger.DB
}

var _ Store = (*Badger)(nil)

// OpenBadger opens (or creates) the database in opts.Dir.
func OpenBadger(opts badger.Options) (*Badger, error) {
	db, err := badger.Open(opts)
	if err != nil && strings.Contains(err.Error(), z.NewFile.Error()) {
		// A process killed just after badger created its next memtable
		// file, before sizing it, leaves it empty, and Open fails on it
		// (dgraph-io/badger#2207; badger wraps the error with %v, hence the
		// text). That failed Open sized it: the next one opens it as the
		// empty memtable it is.
		db, err = badger.Open(opts)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening badger at %s: %w", opts.Dir, err)
	}
	s := &Badger{db: db}
	if err := s.recoverIntent(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// DB exposes the database for backup and streaming.
func (s *Badger) DB() *badger.DB { return s.db }

func (s *Badger) Get(key []byte) (kv.Read, error) {
	var r kv.Read
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		r, err = get(txn, key)
		return err
	})
	return r, err
}

// GetMany reads every key in one read transaction: one snapshot, and one
// transaction's overhead (badger's read watermark) instead of one per key.
func (s *Badger) GetMany(keys [][]byte) ([]kv.Read, error) { return s.GetManyWithin(keys, nil) }

// GetManyWithin is GetMany that stops before the first value that does not
// fit in b: a value's size is known from the store's own bytes (badger's
// table block or value log) before it is copied out.
func (s *Badger) GetManyWithin(keys [][]byte, b *ReadBudget) ([]kv.Read, error) {
	out := make([]kv.Read, 0, len(keys))
	now := time.Now()
	err := s.db.View(func(txn *badger.Txn) error {
		for _, k := range keys {
			r, _, fits, err := read(txn, k, b, now)
			if err != nil || !fits {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func get(txn *badger.Txn, key []byte) (kv.Read, error) {
	r, _, _, err := read(txn, key, nil, time.Time{})
	return r, err
}

// read reads key in txn: held says the store has an entry for it (a value
// or a tombstone); fits is false, and nothing copied, if its value does not
// fit in b. Within a budget, a value expired at now is absent and not
// copied (ReadBudget.admit).
func read(txn *badger.Txn, key []byte, b *ReadBudget, now time.Time) (r kv.Read, held, fits bool, err error) {
	item, err := txn.Get(dataKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return kv.Read{}, false, true, nil
	}
	if err != nil {
		return kv.Read{}, false, false, err
	}
	err = item.Value(func(raw []byte) error {
		if r, err = decodeRead(raw); err != nil {
			return err
		}
		if r, fits = b.admit(r, now); fits {
			r.Value.Data = bytes.Clone(r.Value.Data)
		}
		return nil
	})
	return r, err == nil, fits, err
}

// retainUntil is when badger may drop a key's entry: a tombstone, or a value
// past its expiry, keeps its version for kv.TombstoneRetention.
func retainUntil(c kv.Change) uint64 {
	switch {
	case c.Remove:
		return uint64(clock.Wall(c.Timestamp).Add(kv.TombstoneRetention).Unix()) + 1
	case c.ExpiresAt != 0:
		return uint64(time.UnixMilli(int64(c.ExpiresAt)).Add(kv.TombstoneRetention).Unix()) + 1
	}
	return 0
}

func (s *Badger) Apply(b kv.Write) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	if err := setBatch(wb, b); err != nil {
		return fmt.Errorf("store: apply: %w", err)
	}
	if b.SyncedAt != 0 {
		if err := wb.Set(metaSyncedAt, u64(uint64(b.SyncedAt))); err != nil {
			return fmt.Errorf("store: apply: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: apply: %w", err)
	}
	return nil
}

func (s *Badger) Offsets() (map[int32]int64, error) { return s.slotOffsets(metaOffsetBase) }

func (s *Badger) IngestOffsets() (map[int32]int64, error) { return s.slotOffsets(metaIngestBase) }

func (s *Badger) slotOffsets(base []byte) (map[int32]int64, error) {
	out := make(map[int32]int64)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: base, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(base)+4 {
				return fmt.Errorf("store: bad offset key %q: %w", k, ErrCorrupt)
			}
			slot := int32(binary.BigEndian.Uint32(k[len(base):]))
			err := it.Item().Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("store: bad offset value for slot %d: %w", slot, ErrCorrupt)
				}
				out[slot] = int64(binary.BigEndian.Uint64(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func (s *Badger) Clock() (uint64, error) { return s.meta(metaClock) }

func (s *Badger) SyncedAt() (int64, error) {
	v, err := s.meta(metaSyncedAt)
	return int64(v), err
}

// meta reads one of sluice's 8-byte metadata values; 0 when absent.
func (s *Badger) meta(key []byte) (uint64, error) {
	var c uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return errCorrupt
			}
			c = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return c, err
}

// Clear drops every key and offset and SyncedAt, but not the clock.
func (s *Badger) Clear() error {
	if err := s.db.DropPrefix([]byte{dataPrefix}, metaOffsetBase, metaIngestBase, metaSyncedAt); err != nil {
		return fmt.Errorf("store: clearing: %w", err)
	}
	return nil
}

func (s *Badger) Len() (int, error) {
	n := 0
	err := s.Each(func([]byte, kv.Value) bool { n++; return true })
	return n, err
}

func (s *Badger) Each(fn func(key []byte, v kv.Value) bool) error {
	now := time.Now()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{dataPrefix}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			raw, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			r, err := decodeRead(raw)
			if err != nil {
				return err
			}
			if r = r.Live(now); !r.Found {
				continue
			}
			if !fn(it.Item().KeyCopy(nil)[1:], r.Value) {
				return nil
			}
		}
		return nil
	})
}

func (s *Badger) Close() error { return s.db.Close() }
