package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// Disk is the write-ahead log of a partition whose Badger store, on a
// managed disk, is its own log.
//
// Why the store and the log are one write: a group is durable when its
// store batch is on the disk, so the appender writes the batch itself, in one
// synced badger write (store.ApplyAtomic: one transaction, or an intent
// first when the batch is past a transaction's bound), and returns the
// records' offsets. The loop then applies the group as in every mode; the
// store Disk hands the partition skips a batch whose offsets the appender has
// already written, so nothing is written twice and the loop never waits for
// a disk sync. Group commit is the loop's: it batches what arrives while the
// previous group's sync runs, as it batches Kafka transactions.
//
// Reads may see a group's changes a moment before the loop applies it: they
// are durable then, and the partition's overlay (and its record of recent
// store writes) already stands for them.
//
// Fencing: one process holds the data directory (a node locks it), and in
// it a new appender fences the older ones of the partition.
//
// A failed sync ("fsyncgate"): badger puts a write in its memtable, where
// reads see it, before it syncs the write to the disk; when the sync fails
// the write is served by the store but may not be on the disk, and a retried
// sync cannot tell (Linux may have dropped the dirty pages and cleared the
// error). So after a write whose outcome is unknown the Disk hands out no
// appender again (ErrSyncFailed): the partition's re-sync fails and retries,
// it serves and acknowledges nothing, until the node reopens the store from
// the disk (a restart: badger's close writes its memtable out afresh to a
// new table, synced, so what is served then is on the disk; if that fails,
// the reopened store holds what the disk holds). Nothing of the store
// reaches badger's value log, whose failed sync badger does not return and
// whose close does not write it again: a value over MaxDiskValue is refused
// (ValueLimit), and an intent is written in chunks (store.ApplyAtomic).
type Disk struct {
	st Durable
	// appending serialises appends and fencing: a new appender waits for
	// the append in flight, then no older one writes again.
	appending sync.Mutex
	gen       uint64
	// written is the next offset per slot the appenders have written (and
	// that the store holds); its own lock, so the loop's Apply never waits
	// for an append's sync.
	mu      sync.Mutex
	written map[int32]int64
	// unsynced is the error of the write whose sync may have failed: from
	// then on no appender is handed out. Under mu.
	unsynced error
	// flying is the append whose batch is being written and synced, nil
	// between appends (see settled).
	flying atomic.Pointer[flight]
}

// flight is an append being written and synced: the keys it writes, and
// done, closed once its outcome is known (a failed sync recorded first).
type flight struct {
	keys map[string]struct{}
	done chan struct{}
}

func (f *flight) touches(keys [][]byte) bool {
	if keys == nil {
		return true
	}
	for _, k := range keys {
		if _, ok := f.keys[string(k)]; ok {
			return true
		}
	}
	return false
}

// Durable is the store a Disk writes: a store.Badger opened with
// store.DurableBadgerOptions (a test wraps it to make its syncs slow or fail).
type Durable interface {
	store.Store
	// ApplyAtomic writes a batch whole or, after a crash, not at all, and
	// returns once it is synced.
	ApplyAtomic(kv.Write) error
	// RecoverIntent finishes a batch a failed ApplyAtomic left half-written.
	RecoverIntent() error
}

// NewDisk returns the log of the partition stored in st.
func NewDisk(st Durable) *Disk { return &Disk{st: st, written: map[int32]int64{}} }

// NewAppender finishes a batch a failed append left half-written, fences
// every older appender and starts numbering after the store's offsets. After
// a failed sync it fences and refuses (ErrSyncFailed).
func (d *Disk) NewAppender(_ context.Context) (wal.Appender, error) {
	d.appending.Lock()
	defer d.appending.Unlock()
	d.gen++
	if err := d.syncFailed(); err != nil {
		return nil, err
	}
	if err := d.st.RecoverIntent(); err != nil {
		return nil, err
	}
	offsets, err := d.st.Offsets()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.written = maps.Clone(offsets)
	d.mu.Unlock()
	return &diskAppender{d: d, gen: d.gen, seq: sequence{next: offsets}}, nil
}

type diskAppender struct {
	d   *Disk
	gen uint64
	seq sequence
}

// Append writes g's store batch whole, synced, and returns its offsets.
func (a *diskAppender) Append(_ context.Context, g *wal.Group) ([]int64, error) {
	d := a.d
	d.appending.Lock()
	defer d.appending.Unlock()
	if a.gen != d.gen {
		return nil, fmt.Errorf("%w: %w", wal.ErrNotCommitted, ErrFenced)
	}
	offsets, b, err := a.seq.number(g)
	if err != nil {
		return nil, err
	}
	f := &flight{keys: make(map[string]struct{}, len(b.Changes)), done: make(chan struct{})}
	for _, ch := range b.Changes {
		f.keys[string(ch.Key)] = struct{}{}
	}
	d.flying.Store(f)
	defer func() { d.flying.Store(nil); close(f.done) }() // after failedSync: a waiting read sees it
	if err := d.st.ApplyAtomic(b); err != nil {
		switch {
		case errors.Is(err, store.ErrNotWritten):
			return nil, fmt.Errorf("%w: %w: %w", wal.ErrNotCommitted, wal.ErrPermanent, err)
		case errors.Is(err, badger.ErrDBClosed), errors.Is(err, store.ErrClosed):
			return nil, fmt.Errorf("%w: %w", wal.ErrNotCommitted, err)
		}
		// The write may be in badger's memtable, served to reads, and not
		// on the disk: nothing written from here may be served before the
		// store is reopened from the disk.
		d.failedSync(err)
		return nil, fmt.Errorf("%w: %w", wal.ErrCommitUnknown, err)
	}
	a.seq.commit(b)
	d.mu.Lock()
	for slot, next := range b.Offsets {
		d.written[slot] = max(d.written[slot], next)
	}
	d.mu.Unlock()
	return offsets, nil
}

// Close has nothing to release: the next appender fences this one.
func (a *diskAppender) Close() {}

// Store is the partition's store: st, whose Apply skips what the appenders
// wrote (the loop's apply of a committed group) and writes anything else
// whole.
func (d *Disk) Store() store.Store { return diskStore{Durable: d.st, d: d} }

type diskStore struct {
	Durable
	d *Disk
}

// Reads outside the loop (SESSION, EVENTUAL, a scan) never return a write
// whose sync may fail: badger serves a batch from its memtable while it
// syncs it, so a read that may have seen an append waits for its outcome,
// and fails (store.ErrUnsynced) once a sync failed. The simulator found an
// EVENTUAL read of such a value, lost at the restart that followed.

func (s diskStore) Get(key []byte) (kv.Read, error) {
	before := s.d.flying.Load()
	r, err := s.Durable.Get(key)
	if err != nil {
		return r, err
	}
	return r, s.d.settled(before, [][]byte{key})
}

func (s diskStore) GetMany(keys [][]byte) ([]kv.Read, error) {
	before := s.d.flying.Load()
	reads, err := s.Durable.GetMany(keys)
	if err != nil {
		return reads, err
	}
	return reads, s.d.settled(before, keys)
}

func (s diskStore) GetManyWithin(keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
	before := s.d.flying.Load()
	reads, err := s.Durable.GetManyWithin(keys, b)
	if err != nil {
		return reads, err
	}
	return reads, s.d.settled(before, keys)
}

// Scan reads at the point its read transaction began, before its first
// entry: an append that began later is not in it. So before it hands out
// the first entry (or says there is none) it waits for the append in
// flight then, whatever its keys.
func (s diskStore) Scan(start, end []byte, fn func(key []byte, v kv.Value) bool) error {
	before := s.d.flying.Load()
	var refused error
	first := true
	err := s.Durable.Scan(start, end, func(key []byte, v kv.Value) bool {
		if first {
			first = false
			if refused = s.d.settled(before, nil); refused != nil {
				return false
			}
		}
		return fn(key, v)
	})
	if err == nil && first {
		err = s.d.settled(before, nil)
	}
	return cmp.Or(refused, err)
}

// settled waits, for a read that began while before was in flight (nil:
// none) and has read, until every append among keys (nil: any) whose
// batch it may have seen has its outcome, and refuses the read once a sync
// failed. Appends run one at a time: one that began and ended within the
// read has its outcome recorded already.
func (d *Disk) settled(before *flight, keys [][]byte) error {
	for _, f := range []*flight{before, d.flying.Load()} {
		if f != nil && f.touches(keys) {
			<-f.done
		}
	}
	if err := d.syncFailed(); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnsynced, err)
	}
	return nil
}

func (s diskStore) Apply(b kv.Write) error {
	if s.d.wrote(b) {
		return nil
	}
	err := s.Durable.ApplyAtomic(b)
	if err != nil && !errors.Is(err, store.ErrNotWritten) {
		s.d.failedSync(err)
	}
	return err
}

// failedSync records a write whose sync may have failed.
func (d *Disk) failedSync(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unsynced == nil {
		d.unsynced = err
	}
}

// syncFailed returns ErrSyncFailed, with its cause, once a sync may have failed.
func (d *Disk) syncFailed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unsynced == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrSyncFailed, d.unsynced)
}

// wrote says whether the appenders wrote b: every slot it reaches is
// reached already. A batch that reaches no slot writes no change either.
func (d *Disk) wrote(b kv.Write) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for slot, next := range b.Offsets {
		if next > d.written[slot] {
			return false
		}
	}
	return len(b.Offsets) > 0 || len(b.Changes) == 0
}
