package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/store"
)

// put uploads a snapshot of n keys tagged tag (offsets: slot 0 at n, slot 3
// at 7) whose manifest edit may change, as another writer could have.
func put(t *testing.T, b *Bucket, n int, tag string, edit func(*Manifest)) Manifest {
	t.Helper()
	ctx := context.Background()
	m, dir, err := Write(ctx, filled(t, n, tag), t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&m)
		if err := writeManifest(filepath.Join(dir, ManifestFile), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Upload(ctx, dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func openTestBucket(t *testing.T, keep int) *Bucket {
	t.Helper()
	b, err := OpenBucket(context.Background(), "file://"+t.TempDir(), "c", BucketOptions{Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func emptyStore(t *testing.T) *store.Badger {
	t.Helper()
	st, err := store.OpenBadger(store.BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var want16 = Want{Partition: 1, Range: rng4, Slots: 16}

func ago(d time.Duration) func(*Manifest) {
	return func(m *Manifest) { m.Created = time.Now().Add(-d).UTC() }
}

// A snapshot older than the changelog keeps tombstones is refused, with an
// error naming its age and the retention; a younger one is chosen instead,
// and with none the restore reports there is none (a full replay follows).
func TestRestoreRefusesSnapshotOlderThanRetention(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 10)
	old := put(t, b, 200, "old", ago(2*time.Hour)) // reaches further, but too old
	w := want16
	w.MaxAge = time.Hour

	var log strings.Builder
	_, ok, err := b.Restore(ctx, w, emptyStore(t), t.TempDir(), zerolog.New(&log))
	if err != nil || ok {
		t.Fatalf("Restore with only a snapshot older than the retention = %v %v, want none chosen", ok, err)
	}
	for _, s := range []string{old.Name(), "delete.retention.ms of 1h0m0s", "3600000 ms", "taken 2h0m0s ago"} {
		if !strings.Contains(log.String(), s) {
			t.Fatalf("the refusal does not name %q: %s", s, log.String())
		}
	}

	fresh := put(t, b, 100, "fresh", nil)
	st := emptyStore(t)
	m, ok, err := b.Restore(ctx, w, st, t.TempDir(), zerolog.Nop())
	if err != nil || !ok || m.Name() != fresh.Name() {
		t.Fatalf("Restore = %s %v %v, want the fresh %s", m.Name(), ok, err, fresh.Name())
	}
	if r, _ := st.Get([]byte("k0")); string(r.Value.Data) != "fresh0" {
		t.Fatalf("k0 = %q, want the fresh snapshot's", r.Value.Data)
	}
	if at, _ := st.SyncedAt(); at != fresh.Created.UnixMilli() {
		t.Fatalf("the store's SyncedAt is %d, want the snapshot's time %d", at, fresh.Created.UnixMilli())
	}
	if err := w.fits(old, "c", time.Now()); !errors.Is(err, ErrTooOld) {
		t.Fatalf("fits(old) = %v, want ErrTooOld", err)
	}
}

// The newest snapshot is the one that reaches furthest into the changelog,
// whatever its writer's clock says; the bucket keeps those too.
func TestRestorePicksNewestByOffsets(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 2)
	far := put(t, b, 300, "far", ago(time.Minute)) // a writer whose clock is behind
	put(t, b, 100, "near", nil)
	mid := put(t, b, 200, "mid", func(m *Manifest) { m.Created = time.Now().Add(-30 * time.Second).UTC() })

	names, err := b.List(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(sorted(names)), fmt.Sprint(sorted([]string{far.Name(), mid.Name()})); got != want {
		t.Fatalf("the bucket kept %v, want the two that reach furthest %v", got, want)
	}
	st := emptyStore(t)
	m, ok, err := b.Restore(ctx, want16, st, t.TempDir(), zerolog.Nop())
	if err != nil || !ok || m.Name() != far.Name() {
		t.Fatalf("Restore = %s %v %v, want %s (offsets %v)", m.Name(), ok, err, far.Name(), far.Offsets)
	}
	if n, _ := st.Len(); n != 300 {
		t.Fatalf("%d keys restored, want 300", n)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// A manifest of another cluster, range or slot count is skipped, with the reason logged, however far it reaches.
func TestRestoreSkipsSnapshotsOfAnotherClusterRangeOrSlotCount(t *testing.T) {
	ctx := context.Background()
	b := openTestBucket(t, 10)
	good := put(t, b, 100, "good", ago(time.Minute))
	bad := map[string]Manifest{
		"is of cluster":             put(t, b, 400, "cluster", func(m *Manifest) { m.Cluster = "other" }),
		"slots [0,8)":               put(t, b, 300, "range", func(m *Manifest) { m.Range = keyspace.Range{From: 0, To: 8} }),
		"taken with 8 slots":        put(t, b, 250, "slots", func(m *Manifest) { m.Slots = 8 }),
		"names no slot count":       put(t, b, 220, "noslots", func(m *Manifest) { m.Slots = 0 }),
		"slot 9, outside its range": put(t, b, 200, "offsets", func(m *Manifest) { m.Offsets[9] = 1 }),
	}
	var log strings.Builder
	st := emptyStore(t)
	m, ok, err := b.Restore(ctx, want16, st, t.TempDir(), zerolog.New(&log))
	if err != nil || !ok || m.Name() != good.Name() {
		t.Fatalf("Restore = %s %v %v, want the only fitting snapshot %s", m.Name(), ok, err, good.Name())
	}
	if r, _ := st.Get([]byte("k0")); string(r.Value.Data) != "good0" {
		t.Fatalf("k0 = %q, want the fitting snapshot's", r.Value.Data)
	}
	for why, m := range bad {
		if !strings.Contains(log.String(), why) || !strings.Contains(log.String(), m.Name()) {
			t.Errorf("the skip of %s (%s) is not logged: %s", m.Name(), why, log.String())
		}
	}
}
