package store

import (
	"bytes"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
)

// Scans of a key range: what a partition's part of a Scan reads.

// Scan iterates [start, end) in one read transaction. Values are not
// prefetched: a scan that fn stops early (a page, a slow client's
// backpressure) reads no value it does not hand out, and memory stays at one
// entry whatever the range.
func (s *Badger) Scan(start, end []byte, fn func(key []byte, v kv.Value) bool) error {
	now := time.Now()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{dataPrefix}})
		defer it.Close()
		for it.Seek(dataKey(start)); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()[1:]
			if len(end) > 0 && bytes.Compare(key, end) >= 0 {
				return nil
			}
			raw, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			r, err := decodeRead(raw)
			if err != nil {
				return err
			}
			if r = r.Live(now); !r.Found {
				continue // a tombstone or an expired value: kept for its version only
			}
			if !fn(bytes.Clone(key), r.Value) {
				return nil
			}
		}
		return nil
	})
}

// Scan takes the live entries of [start, end) under the lock (one point, as
// Badger's transaction gives) and then hands them out. Values are not
// copied: Apply stores its own copy and never changes it, so a scan holds
// the range's keys and no value of its own, however large the values (it
// copied every value of the range before: a scan of a memory partition
// allocated the partition's size).
func (m *Memory) Scan(start, end []byte, fn func(key []byte, v kv.Value) bool) error {
	now := m.now()
	type entry struct {
		key string
		v   kv.Value
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	var in []entry
	for k, r := range m.data {
		if k < string(start) || (len(end) > 0 && k >= string(end)) {
			continue
		}
		if r = r.Live(now); r.Found {
			in = append(in, entry{k, r.Value})
		}
	}
	m.mu.Unlock()
	sort.Slice(in, func(i, j int) bool { return in[i].key < in[j].key })
	for _, e := range in {
		if !fn([]byte(e.key), e.v) {
			return nil
		}
	}
	return nil
}
