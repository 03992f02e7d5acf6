package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal/local"
)

// slowSync is a partition's durable Badger whose next write, once hold was
// called, is in the store and then waits for release before it returns: a
// slow fsync.
type slowSync struct {
	*store.Badger
	mu      sync.Mutex
	held    chan struct{}
	release chan struct{}
}

// hold makes the next write wait; held is closed once it is in the store.
func (s *slowSync) hold() (held, release chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held, s.release = make(chan struct{}), make(chan struct{})
	return s.held, s.release
}

func (s *slowSync) ApplyAtomic(b kv.Write) error {
	err := s.Badger.ApplyAtomic(b)
	s.mu.Lock()
	held, release := s.held, s.release
	s.held = nil
	s.mu.Unlock()
	if held != nil {
		close(held)
		<-release
	}
	return err
}

// failingReads fails every read of a store while fail is set: a transient
// read error of the disk.
type failingReads struct {
	store.Store
	fail atomic.Bool
}

func (s *failingReads) GetMany(keys [][]byte) ([]kv.Read, error) {
	if s.fail.Load() {
		return nil, errors.New("injected: read: input/output error")
	}
	return s.Store.GetMany(keys)
}

// Issue 23.1, as demonstrated there (the real Badger, local.NewDisk and
// store.OpenCached, one transient read error and a slow fsync): a group in
// flight is abandoned by a re-sync, its write lands in the durable store
// anyway, and the partition serves again. The cache must not be behind the
// durable store then: Get answers the durable value, and a CAS expecting the
// version before it fails (it succeeded, giving version 2 to two values).
func TestCachedDiskIsNotBehindAfterAResync(t *testing.T) {
	st, err := store.OpenBadger(store.DurableBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowSync{Badger: st}
	d := local.NewDisk(slow)
	reads := &failingReads{Store: d.Store()}
	c, err := store.OpenCached(reads, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := partition.Start(partition.Config{Config: core.Config{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Slots: 4, Epoch: 1},
		Store: c, WAL: opened{Log: d, newAppender: resyncCache(c, d.NewAppender, zerolog.Nop())}, Log: zerolog.Nop()})
	defer p.Close()
	ctx := context.Background()
	get := func() (kv.Read, error) { // once the partition serves (60 s at most)
		deadline := time.Now().Add(60 * time.Second)
		for {
			r, err := p.Get(ctx, []byte("k"))
			if err == nil || time.Now().After(deadline) {
				return r, err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := get(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: []byte("k"), Value: []byte("v1")}}); err != nil {
		t.Fatal(err)
	}

	held, release := slow.hold()
	second := make(chan error, 1)
	go func() {
		_, err := p.Upsert(ctx, []kv.Entry{{Key: []byte("k"), Value: []byte("v2")}})
		second <- err
	}()
	<-held // v2 is in the durable store, its sync not returned yet
	reads.fail.Store(true)
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: []byte("other"), Value: []byte("x")}}); err == nil {
		t.Fatal("a write whose read failed succeeded")
	}
	reads.fail.Store(false)
	close(release)
	if err := <-second; err == nil {
		t.Log("the write of v2 was acknowledged") // either answer is true: it is in the store
	}

	r, err := get()
	if err != nil {
		t.Fatal(err)
	}
	durable, err := st.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value.Data) != string(durable.Value.Data) || r.Value.Version != durable.Value.Version {
		t.Errorf("after the re-sync Get(k) = %q v%d, the durable store holds %q v%d", r.Value.Data, r.Value.Version, durable.Value.Data, durable.Value.Version)
	}
	one := uint64(1)
	_, err = p.Upsert(ctx, []kv.Entry{{Key: []byte("k"), Value: []byte("v3"), Expected: &one}})
	var mismatch *partition.VersionMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("a CAS expecting version 1 of k, whose version is %d: %v", durable.Value.Version, err)
	}
}
