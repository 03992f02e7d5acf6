package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// SnapshotInfo describes a snapshot, read in the same badger transaction as
// its data: the offsets are exactly those the data reaches.
type SnapshotInfo struct {
	Keys    int64
	Offsets map[int32]int64
	Ingest  map[int32]int64
	Clock   uint64
}

// Snapshot writes the whole database, as of one read transaction, in badger's
// backup format (length-prefixed KVLists, readable by badger's Load). Only the
// newest live version of each key is written. Writes may go on meanwhile.
func (s *Badger) Snapshot(w io.Writer) (SnapshotInfo, error) {
	info := SnapshotInfo{Offsets: map[int32]int64{}, Ingest: map[int32]int64{}}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		list := &pb.KVList{}
		size := 0
		flush := func() error {
			if len(list.Kv) == 0 {
				return nil
			}
			if err := writeKVList(w, list); err != nil {
				return err
			}
			list.Kv, size = list.Kv[:0], 0
			return nil
		}
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if item.IsDeletedOrExpired() {
				continue
			}
			key := item.KeyCopy(nil)
			val, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := info.note(key, val); err != nil {
				return err
			}
			list.Kv = append(list.Kv, &pb.KV{Key: key, Value: val, Version: item.Version(), ExpiresAt: item.ExpiresAt(), UserMeta: []byte{item.UserMeta()}})
			if size += len(key) + len(val); size >= 1<<20 || len(list.Kv) >= 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	return info, err
}

// note reads what a snapshot says about itself from one of its entries.
func (i *SnapshotInfo) note(key, val []byte) error {
	switch {
	case len(key) > 0 && key[0] == dataPrefix:
		r, err := decodeRead(val)
		if err != nil {
			return fmt.Errorf("store: bad value of %q: %w", key[1:], err)
		}
		if r.Live(time.Now()).Found {
			i.Keys++
		}
	case bytes.HasPrefix(key, metaOffsetBase), bytes.HasPrefix(key, metaIngestBase):
		if len(val) != 8 || len(key) != len(metaOffsetBase)+4 {
			return fmt.Errorf("store: bad offset entry %q", key)
		}
		slot := int32(binary.BigEndian.Uint32(key[len(key)-4:]))
		off := int64(binary.BigEndian.Uint64(val))
		if bytes.HasPrefix(key, metaOffsetBase) {
			i.Offsets[slot] = off
		} else {
			i.Ingest[slot] = off
		}
	case bytes.Equal(key, metaClock) && len(val) == 8:
		i.Clock = binary.BigEndian.Uint64(val)
	}
	return nil
}

func writeKVList(w io.Writer, list *pb.KVList) error {
	b, err := proto.Marshal(list)
	if err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint64(len(b))); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// LoadSnapshot loads a snapshot written by Snapshot into the database, which
// should be empty.
func (s *Badger) LoadSnapshot(r io.Reader) error {
	if err := s.db.Load(r, 256); err != nil {
		return fmt.Errorf("store: loading snapshot: %w", err)
	}
	return nil
}
