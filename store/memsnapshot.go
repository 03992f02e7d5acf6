package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicedb/sluice/kv"
)

// Snapshots of a Memory store are in the Badger store's format (badger's
// backup stream of KVLists, the same keys and values), so the same manifest,
// checksum, bucket and restore code serve both, and a memory snapshot loads
// into a Badger store and back.

// Snapshot writes the store as of one moment (under its lock): every key,
// tombstones within their retention, offsets, ingest offsets, clock.
func (m *Memory) Snapshot(w io.Writer) (SnapshotInfo, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return SnapshotInfo{}, ErrClosed
	}
	data := make(map[string]kv.Read, len(m.data))
	for k, r := range m.data {
		data[k] = r // values are never changed in place: sharing them is safe
	}
	info := SnapshotInfo{Offsets: m.copyOfLocked(m.offsets), Ingest: m.copyOfLocked(m.ingest), Clock: m.clock}
	m.mu.Unlock()

	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := m.now()
	list := &pb.KVList{}
	size := 0
	add := func(key, val []byte, expiresAt uint64) error {
		list.Kv = append(list.Kv, &pb.KV{Key: key, Value: val, Version: 1, ExpiresAt: expiresAt, UserMeta: []byte{0}})
		if size += len(key) + len(val); size < 1<<20 && len(list.Kv) < 1000 {
			return nil
		}
		size = 0
		err := writeKVList(w, list)
		list.Kv = list.Kv[:0]
		return err
	}
	for _, k := range keys {
		r := data[k]
		until := retainUntil(kv.Change{Remove: !r.Found, Timestamp: r.Value.Timestamp, ExpiresAt: r.Value.ExpiresAt})
		if until != 0 && until <= uint64(now.Unix()) {
			continue // past its retention: the Badger store has dropped it too
		}
		if r.Live(now).Found {
			info.Keys++
		}
		if err := add(dataKey([]byte(k)), encodeRead(r), until); err != nil {
			return info, err
		}
	}
	for _, meta := range []struct {
		offsets map[int32]int64
		key     func(int32) []byte
	}{{info.Offsets, offsetKey}, {info.Ingest, ingestKey}} {
		for slot, off := range meta.offsets {
			if err := add(meta.key(slot), u64(uint64(off)), 0); err != nil {
				return info, err
			}
		}
	}
	if info.Clock != 0 {
		if err := add(metaClock, u64(info.Clock), 0); err != nil {
			return info, err
		}
	}
	if len(list.Kv) > 0 {
		if err := writeKVList(w, list); err != nil {
			return info, err
		}
	}
	return info, nil
}

// LoadSnapshot loads a snapshot (of a Memory or a Badger store) into the
// store, which should be empty.
func (m *Memory) LoadSnapshot(r io.Reader) error {
	var info SnapshotInfo
	info.Offsets, info.Ingest = map[int32]int64{}, map[int32]int64{}
	data := map[string]kv.Read{}
	now := uint64(m.now().Unix())
	err := readKVLists(r, func(e *pb.KV) error {
		if len(e.Key) > 0 && e.Key[0] == dataPrefix {
			if e.ExpiresAt != 0 && e.ExpiresAt <= now {
				return nil
			}
			r, err := decodeRead(e.Value)
			if err != nil {
				return fmt.Errorf("store: bad value of %q: %w", e.Key[1:], err)
			}
			r.Value.Data = bytes.Clone(r.Value.Data)
			data[string(e.Key[1:])] = r
			return nil
		}
		return info.note(e.Key, e.Value)
	})
	if err != nil {
		return fmt.Errorf("store: loading snapshot: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for k, r := range data {
		m.putLocked(k, r, now)
	}
	for s, o := range info.Offsets {
		m.offsets[s] = o
	}
	for s, o := range info.Ingest {
		m.ingest[s] = o
	}
	m.clock = max(m.clock, info.Clock)
	return nil
}

// DropAll empties the store.
func (m *Memory) DropAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
	m.clock = 0
	return nil
}

// maxKVList bounds one KVList of a snapshot stream: Snapshot writes at most
// about 1 MiB (plus one entry of up to 1 MiB); badger's own backups are of
// that order too.
const maxKVList = 256 << 20

// readKVLists reads badger's backup stream: little-endian uint64 lengths,
// each followed by a marshalled KVList.
func readKVLists(r io.Reader, fn func(*pb.KV) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var buf []byte
	for {
		var n uint64
		if err := binary.Read(br, binary.LittleEndian, &n); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if n > maxKVList {
			return fmt.Errorf("%w: a list of %d bytes", errCorrupt, n)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		list := &pb.KVList{}
		if err := proto.Unmarshal(buf, list); err != nil {
			return err
		}
		for _, e := range list.Kv {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}
