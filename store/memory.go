package store

import (
	"bytes"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// Memory is a Store in a map: for tests, and for counters and hot small
// state that need no disk (--store memory: backed up to the snapshot bucket).
type Memory struct {
	mu      sync.Mutex
	data    map[string]kv.Read // tombstones too (Found false)
	offsets map[int32]int64
	ingest  map[int32]int64
	clock   uint64
	synced  int64
	closed  bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{data: make(map[string]kv.Read), offsets: make(map[int32]int64), ingest: make(map[int32]int64)}
}

func (m *Memory) Get(key []byte) (kv.Read, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return kv.Read{}, ErrClosed
	}
	return m.data[string(key)], nil
}

func (m *Memory) GetMany(keys [][]byte) ([]kv.Read, error) { return m.GetManyWithin(keys, nil) }

// GetManyWithin hands out the stored values themselves (Apply stores a copy
// and never changes it), so a read copies nothing; b still bounds what one
// request holds of them, as with Badger.
func (m *Memory) GetManyWithin(keys [][]byte, b *ReadBudget) ([]kv.Read, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]kv.Read, 0, len(keys))
	for _, k := range keys {
		r := m.data[string(k)]
		if !b.take(len(r.Value.Data)) {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

func (m *Memory) Apply(b kv.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, c := range b.Changes {
		r := c.Read()
		r.Value.Data = bytes.Clone(r.Value.Data)
		m.data[string(c.Key)] = r
	}
	for s, o := range b.Offsets {
		m.offsets[s] = o
	}
	for s, o := range b.Ingest {
		m.ingest[s] = o
	}
	if b.Clock != 0 {
		m.clock = b.Clock
	}
	if b.SyncedAt != 0 {
		m.synced = b.SyncedAt
	}
	return nil
}

func (m *Memory) SyncedAt() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.synced, nil
}

func (m *Memory) Clear() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.data, m.offsets, m.ingest, m.synced = make(map[string]kv.Read), make(map[int32]int64), make(map[int32]int64), 0
	return nil
}

func (m *Memory) Offsets() (map[int32]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copyOfLocked(m.offsets), nil
}

func (m *Memory) IngestOffsets() (map[int32]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copyOfLocked(m.ingest), nil
}

func (m *Memory) copyOfLocked(offsets map[int32]int64) map[int32]int64 { return maps.Clone(offsets) }

func (m *Memory) Clock() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clock, nil
}

func (m *Memory) Len() (int, error) {
	n := 0
	err := m.Each(func([]byte, kv.Value) bool { n++; return true })
	return n, err
}

func (m *Memory) Each(fn func(key []byte, v kv.Value) bool) error {
	now := time.Now()
	m.mu.Lock()
	keys := make([]string, 0, len(m.data))
	for k := range m.data {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		m.mu.Lock()
		r := m.data[k].Live(now)
		m.mu.Unlock()
		if r.Found && !fn([]byte(k), r.Value) {
			return nil
		}
	}
	return nil
}

func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
