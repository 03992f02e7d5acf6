package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
)

// The intent of a batch past one badger transaction's bound (atomic.go): the
// encoded batch, cut into chunks under badger's value threshold so that none
// reaches the value log (whose failed sync badger does not return), each
// chunk synced in its own transaction; then a header naming the chunk count,
// synced, which makes the intent count. A crash before the header leaves
// chunks no header names: OpenBadger deletes them.
var (
	// metaIntent holds the header: intentFormat, then uvarint chunk count.
	// (A store written before the chunks holds the whole encoded batch
	// here, batchFormat first; recoverIntent still reads it.)
	metaIntent = []byte("mintent")
	// metaIntentChunk + 4-byte big-endian index holds one chunk.
	metaIntentChunk = []byte("mintent/")
)

const (
	intentFormat = 2
	// intentChunk is well under MaxLSMValue and under the 15 % of a
	// memtable one transaction takes.
	intentChunk = 512 << 10
)

func intentChunkKey(i int) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), metaIntentChunk...), uint32(i))
}

// applyByIntent writes the intent, then b, then removes the intent; each step
// durable before the next on a synced store.
func (s *Badger) applyByIntent(b kv.Write) error {
	raw := encodeBatch(b)
	n := 0
	for off := 0; off < len(raw); off += intentChunk {
		chunk := raw[off:min(off+intentChunk, len(raw))]
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(intentChunkKey(n), chunk) }); err != nil {
			// Chunks no header names are not an intent: nothing of b is.
			return fmt.Errorf("store: apply: %w: writing the intent: %w", ErrNotWritten, err)
		}
		n++
	}
	header := binary.AppendUvarint([]byte{intentFormat}, uint64(n))
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaIntent, header) }); err != nil {
		return fmt.Errorf("store: apply: writing the intent: %w", err)
	}
	return s.finishIntent(b, n)
}

// finishIntent applies b and removes its intent of n chunks.
func (s *Badger) finishIntent(b kv.Write, n int) error {
	if err := s.Apply(b); err != nil {
		return err
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(metaIntent); err != nil {
			return err
		}
		for i := range n {
			if err := txn.Delete(intentChunkKey(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: apply: removing the intent: %w", err)
	}
	return nil
}

// recoverIntent applies again the batch a crash left half-written, and
// deletes the chunks of an intent whose header a crash cut off.
func (s *Badger) recoverIntent() error {
	var (
		raw []byte
		n   int
	)
	err := s.db.View(func(txn *badger.Txn) error {
		header, err := valueOf(txn, metaIntent)
		if err != nil || header == nil {
			return err
		}
		if header[0] == batchFormat {
			raw = header // written before intents had chunks
			return nil
		}
		count, m := binary.Uvarint(header[1:])
		if header[0] != intentFormat || m <= 0 {
			return fmt.Errorf("store: the intent left by a crash: %w", ErrCorrupt)
		}
		n = int(count)
		for i := range n {
			chunk, err := valueOf(txn, intentChunkKey(i))
			if err != nil {
				return err
			}
			if chunk == nil {
				return fmt.Errorf("store: the intent left by a crash lacks chunk %d of %d: %w", i, n, ErrCorrupt)
			}
			raw = append(raw, chunk...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if raw == nil {
		return s.dropOrphanChunks()
	}
	b, err := decodeBatch(raw)
	if err != nil {
		return fmt.Errorf("store: the intent left by a crash: %w", err)
	}
	return s.finishIntent(b, n)
}

// dropOrphanChunks deletes intent chunks that no header names.
func (s *Badger) dropOrphanChunks() error {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: metaIntentChunk})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// valueOf copies key's value out of txn; nil if absent.
func valueOf(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err == nil && len(v) == 0 {
		err = ErrCorrupt
	}
	return v, err
}
