package local

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// failingSync is a partition's durable Badger whose writes, once fail is
// set, reach the store (badger's memtable, where reads see them) and then
// report that their sync failed.
type failingSync struct {
	*store.Badger
	fail atomic.Bool
}

var errInjectedSync = errors.New("injected: fsync: input/output error")

func (s *failingSync) ApplyAtomic(b kv.Write) error {
	if err := s.Badger.ApplyAtomic(b); err != nil {
		return err
	}
	if s.fail.Load() {
		return errInjectedSync
	}
	return nil
}

// startDisk starts a --wal disk partition over st and waits until it
// serves; appenders counts the appenders asked for.
func startDisk(t *testing.T, st Durable, appenders *atomic.Int64) *partition.Partition {
	t.Helper()
	d := NewDisk(st)
	p := partition.Start(partition.Config{Config: core.Config{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Slots: 4, Epoch: 1},
		Store: d.Store(), WAL: countingLog{d, appenders}, Log: zerolog.Nop()})
	t.Cleanup(func() { p.Close() })
	waitUntil(t, "the partition serves", p.Serving)
	return p
}

// countingLog counts the appenders asked of its Disk.
type countingLog struct {
	*Disk
	n *atomic.Int64
}

func (c countingLog) NewAppender(ctx context.Context) (wal.Appender, error) {
	c.n.Add(1)
	return c.Disk.NewAppender(ctx)
}

// waitUntil waits for cond with a generous deadline: never a speed assumption.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Issue 22.7 ("fsyncgate"): after a write whose sync failed, the partition
// serves nothing written after the last successful sync. Its re-sync is
// refused (ErrSyncFailed) and retried, and it neither serves the value the
// store's memtable holds nor acknowledges anything, until the store is
// reopened from the disk; then it serves again.
func TestDiskServesNothingAfterAFailedSync(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenBadger(store.DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	fs := &failingSync{Badger: st}
	var appenders atomic.Int64
	p := startDisk(t, fs, &appenders)
	ctx := context.Background()
	k := []byte("k")
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: k, Value: []byte("synced")}}); err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(true)
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: k, Value: []byte("unsynced")}}); err == nil {
		t.Fatal("a write whose sync failed was acknowledged")
	}
	if r, _ := st.Get(k); string(r.Value.Data) != "unsynced" {
		t.Fatalf("the injected failure did not leave the write in the store (k = %q)", r.Value.Data)
	}
	// The re-sync asks for a new appender. Wait until the partition answers
	// a read again (the bug) or its new appender was refused twice (a retry
	// after the first refusal).
	var served kv.Read
	waitUntil(t, "the partition answers a read or its re-sync is refused twice", func() bool {
		if appenders.Load() >= 3 {
			return true
		}
		r, err := p.Get(ctx, k)
		served = r
		return err == nil
	})
	if appenders.Load() < 3 {
		t.Fatalf("after a failed sync the partition serves again: Get k = %q, written after the last successful sync", served.Value.Data)
	}
	waitUntil(t, "the partition reports it does not serve", func() bool { return !p.Serving() })
	if r, err := p.Get(ctx, k); err == nil {
		t.Fatalf("after a failed sync the partition serves again: Get k = %q", r.Value.Data)
	}
	if _, err := p.ReadCommitted(k); err == nil {
		t.Fatal("after a failed sync the partition answers committed reads")
	}
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: []byte("later"), Value: []byte("x")}}); err == nil {
		t.Fatal("after a failed sync the partition acknowledged a write")
	}

	// The node restarts: the partition closes its store, which is reopened
	// from the disk.
	p.Close()
	st, err = store.OpenBadger(store.DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	p = startDisk(t, st, &appenders)
	if _, err := p.Get(ctx, k); err != nil {
		t.Fatalf("after the store was reopened: %v", err)
	}
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: k, Value: []byte("after")}}); err != nil {
		t.Fatalf("after the store was reopened: %v", err)
	}
}

// heldSync is failingSync whose writes, once hold is set, reach the store
// (badger's memtable, where reads see them), say so on written, and wait
// for release before they report their sync's outcome.
type heldSync struct {
	failingSync
	hold    atomic.Bool
	written chan struct{}
	release chan struct{}
}

func (s *heldSync) ApplyAtomic(b kv.Write) error {
	if !s.hold.Load() {
		return s.failingSync.ApplyAtomic(b)
	}
	if err := s.Badger.ApplyAtomic(b); err != nil {
		return err
	}
	s.written <- struct{}{}
	<-s.release
	if s.fail.Load() {
		return errInjectedSync
	}
	return nil
}

// A read outside the loop (EVENTUAL, SESSION) while a write is being
// synced must not return it: badger serves it from its memtable before the
// sync, and when the sync fails a restart may take it back. The read waits
// for the sync's outcome and is refused (UNAVAILABLE) when it failed; a key
// the write does not touch is read at once. Found by the simulator: an
// EVENTUAL read of a value the restart after a failed sync lost.
func TestDiskReadsNeverSeeAWriteWhoseSyncFails(t *testing.T) {
	for _, fail := range []bool{true, false} {
		t.Run(map[bool]string{true: "the sync fails", false: "the sync succeeds"}[fail], func(t *testing.T) {
			st, err := store.OpenBadger(store.DurableBadgerOptions(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			hs := &heldSync{failingSync: failingSync{Badger: st}, written: make(chan struct{}), release: make(chan struct{})}
			// No read cache: a key the cache has evicted is read from the store.
			d := NewDisk(hs)
			p := partition.Start(partition.Config{Config: core.Config{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Slots: 4, Epoch: 1},
				Store: d.Store(), WAL: d, Log: zerolog.Nop(), ReadCache: partition.NewReadCache(0)})
			t.Cleanup(func() { p.Close() })
			waitUntil(t, "the partition serves", p.Serving)
			ctx := context.Background()
			for _, k := range []string{"k", "other"} {
				if _, err := p.Upsert(ctx, []kv.Entry{{Key: []byte(k), Value: []byte("synced")}}); err != nil {
					t.Fatal(err)
				}
			}
			hs.fail.Store(fail)
			hs.hold.Store(true)
			go p.Upsert(ctx, []kv.Entry{{Key: []byte("k"), Value: []byte("in flight")}})
			<-hs.written
			hs.hold.Store(false)
			if r, err := p.ReadCommitted([]byte("other")); err != nil || string(r.Value.Data) != "synced" {
				t.Fatalf("a key the write in flight does not touch: %q %v", r.Value.Data, err)
			}
			type read struct {
				r   kv.Read
				err error
			}
			got := make(chan read, 1)
			go func() {
				r, err := p.ReadCommitted([]byte("k"))
				got <- read{r, err}
			}()
			var early *read
			select { // the read waits for the sync, or (before the fix) answers at once
			case r := <-got:
				early = &r
			case <-time.After(time.Second):
			}
			close(hs.release)
			r := early
			if r == nil {
				rr := <-got
				r = &rr
			}
			switch {
			case fail && r.err == nil:
				t.Fatalf("a read while the write's sync was failing answered %q (before the outcome: %v)", r.r.Value.Data, early != nil)
			case fail && !partition.IsUnavailable(r.err):
				t.Fatalf("the refused read's error %v is not UNAVAILABLE", r.err)
			case !fail && (r.err != nil || string(r.r.Value.Data) != "in flight"):
				t.Fatalf("a read while the write synced: %q %v, want the write's value", r.r.Value.Data, r.err)
			}
		})
	}
}
