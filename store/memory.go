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
	mu   sync.Mutex
	data map[string]kv.Read // tombstones too (Found false)
	// deadlines are when data's tombstones and expiring values go
	// (memexpiry.go).
	deadlines *deadlines
	offsets   map[int32]int64
	ingest    map[int32]int64
	clock     uint64
	synced    int64
	closed    bool
	// now is the wall clock that expiry and retention are judged by;
	// time.Now but in tests.
	now func() time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock is NewMemory judging expiry and retention by now instead
// of time.Now: for a simulation's clock.
func NewMemoryClock(now func() time.Time) *Memory {
	m := &Memory{now: now}
	m.resetLocked()
	return m
}

// resetLocked empties the keys and the offsets (not the clock).
func (m *Memory) resetLocked() {
	m.data, m.deadlines = make(map[string]kv.Read), newDeadlines()
	m.offsets, m.ingest, m.synced = make(map[int32]int64), make(map[int32]int64), 0
}

// putLocked stores key's state r as of unix second now: a state already
// past its retention is not held, and neither is what it replaces.
func (m *Memory) putLocked(key string, r kv.Read, now uint64) {
	until := retainUntilRead(r)
	if until != 0 && until <= now {
		delete(m.data, key)
		m.deadlines.set(key, 0)
		return
	}
	m.data[key] = r
	m.deadlines.set(key, until)
}

// getLocked is key's state at unix second now: absent once past its
// retention, as in Badger, even before Apply drops it.
func (m *Memory) getLocked(key []byte, now uint64) kv.Read {
	r := m.data[string(key)]
	if !retained(r, now) {
		return kv.Read{}
	}
	return r
}

func (m *Memory) Get(key []byte) (kv.Read, error) {
	now := uint64(m.now().Unix())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return kv.Read{}, ErrClosed
	}
	return m.getLocked(key, now), nil
}

func (m *Memory) GetMany(keys [][]byte) ([]kv.Read, error) { return m.GetManyWithin(keys, nil) }

// GetManyWithin hands out the stored values themselves (Apply stores a copy
// and never changes it), so a read copies nothing; b still bounds what one
// request holds of them, as with Badger.
func (m *Memory) GetManyWithin(keys [][]byte, b *ReadBudget) ([]kv.Read, error) {
	at := m.now()
	now := uint64(at.Unix())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]kv.Read, 0, len(keys))
	for _, k := range keys {
		r, fits := b.admit(m.getLocked(k, now), at)
		if !fits {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

// Apply writes the batch and drops every tombstone and expired value whose
// retention has passed.
func (m *Memory) Apply(b kv.Write) error {
	now := uint64(m.now().Unix())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, c := range b.Changes {
		r := c.Read()
		r.Value.Data = bytes.Clone(r.Value.Data)
		m.putLocked(string(c.Key), r, now)
	}
	m.deadlines.due(now, func(key string) { delete(m.data, key) })
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
	m.resetLocked()
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
	now := m.now()
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
