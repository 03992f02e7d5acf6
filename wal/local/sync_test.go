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
