package snapshot_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/snapshot/snapshottest"
	"github.com/sluicedb/sluice/store"
)

// within fails the test if fn has not returned in a generous deadline.
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return within 30s", what)
		return nil
	}
}

func openStore(t *testing.T) *store.Badger {
	t.Helper()
	st, err := store.OpenBadger(store.BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A blob store that never answers fails each call after the bucket's
// timeout with ErrStalled, instead of hanging it.
func TestHungBlobStoreStallsOut(t *testing.T) {
	ctx := context.Background()
	rng := keyspace.Range{From: 0, To: 4}
	st := openStore(t)
	m, dir, err := snapshot.Write(ctx, st, t.TempDir(), snapshot.Manifest{Cluster: "c", Partition: 1, Range: rng, Slots: 16, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}

	s := snapshottest.NewS3(t, snapshottest.HangAll)
	b, err := snapshot.OpenBucket(ctx, s.URL("b"), "c", snapshot.BucketOptions{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := within(t, "Upload to a hung store", func() error { return b.Upload(ctx, dir, m) }); !errors.Is(err, snapshot.ErrStalled) {
		t.Fatalf("Upload = %v, want ErrStalled", err)
	}
	if err := within(t, "List on a hung store", func() error { _, err := b.List(ctx, 1); return err }); !errors.Is(err, snapshot.ErrStalled) {
		t.Fatalf("List = %v, want ErrStalled", err)
	}
	var ok bool
	err = within(t, "Restore from a hung store", func() (err error) {
		_, ok, err = b.Restore(ctx, snapshot.Want{Partition: 1, Range: rng, Slots: 16}, openStore(t), t.TempDir(), zerolog.Nop())
		return err
	})
	if !errors.Is(err, snapshot.ErrStalled) || ok {
		t.Fatalf("Restore = %v %v, want ErrStalled", ok, err)
	}
	if s.HungRequests() == 0 {
		t.Fatal("the fake store saw no request")
	}

	// An upload cancelled by its caller (its partition released) returns
	// as soon as it is cancelled, whatever the timeout.
	hangs := snapshottest.NewS3(t, snapshottest.HangWrites)
	slow, err := snapshot.OpenBucket(ctx, hangs.URL("b"), "c", snapshot.BucketOptions{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	cctx, cancel := context.WithCancelCause(ctx)
	go func() {
		<-hangs.Hung // the upload's PUT is unanswered
		cancel(snapshot.ErrCancelled)
	}()
	if err := within(t, "a cancelled Upload", func() error { return slow.Upload(cctx, dir, m) }); !errors.Is(err, snapshot.ErrCancelled) {
		t.Fatalf("cancelled Upload = %v, want ErrCancelled", err)
	}
}
