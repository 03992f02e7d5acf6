package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
)

var rng4 = keyspace.Range{From: 0, To: 4}

func filled(t *testing.T, n int, tag string) *store.Badger {
	t.Helper()
	st, err := store.OpenBadger(store.BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var cs []kv.Change
	for i := 0; i < n; i++ {
		cs = append(cs, kv.Change{Key: fmt.Append(nil, "k", i), Value: fmt.Append(nil, tag, i), Version: 1})
	}
	if err := st.Apply(kv.Write{Changes: cs, Offsets: map[int32]int64{0: int64(n), 3: 7}}); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestWriteVerifyLoad(t *testing.T) {
	st := filled(t, 1000, "a")
	m, dir, err := Write(context.Background(), st, t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.Keys != 1000 || m.Offsets[0] != 1000 || m.Offsets[3] != 7 || m.Bytes == 0 || len(m.SHA256) != 64 || filepath.Base(dir) != m.Name() {
		t.Fatalf("manifest %+v in %s", m, dir)
	}
	if _, err := os.Stat(dir + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("the temporary folder is left behind")
	}
	dst, err := store.OpenBadger(store.BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := Load(dir, dst); err != nil {
		t.Fatal(err)
	}
	if n, _ := dst.Len(); n != 1000 {
		t.Fatalf("%d keys loaded", n)
	}
	// Flip one byte: the checksum catches it.
	data := filepath.Join(dir, DataFile)
	b, _ := os.ReadFile(data)
	b[len(b)/2] ^= 0xff
	os.WriteFile(data, b, 0o644)
	if _, err := Verify(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("a flipped byte: %v", err)
	}
	// No manifest: not a snapshot.
	os.Remove(filepath.Join(dir, ManifestFile))
	if _, err := Verify(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("no manifest: %v", err)
	}
}

func TestReadManifestRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":       "{",
		"future format":  `{"format":2,"range":{"from":0,"to":4},"sha256":"` + strings.Repeat("a", 64) + `"}`,
		"empty range":    `{"format":1,"range":{"from":4,"to":4},"sha256":"` + strings.Repeat("a", 64) + `"}`,
		"short checksum": `{"format":1,"range":{"from":0,"to":4},"sha256":"abc"}`,
	} {
		if _, err := ReadManifest(strings.NewReader(in)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The bucket keeps the newest N, never lists a snapshot without a manifest,
// and Restore skips a corrupt newest snapshot for the one before it.
func TestBucketRetentionAndFallback(t *testing.T) {
	ctx := context.Background()
	bdir := t.TempDir()
	b, err := OpenBucket(ctx, "file://"+bdir, "c", BucketOptions{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var names []string
	for i, tag := range []string{"old", "mid", "new"} {
		st := filled(t, 100+i, tag)
		m, dir, err := Write(ctx, st, t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Upload(ctx, dir, m); err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name())
		time.Sleep(2 * time.Millisecond)
	}
	got, err := b.List(ctx, 1)
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]string{names[2], names[1]}) {
		t.Fatalf("List = %v %v, want the newest two of %v", got, err, names)
	}
	// A half-uploaded snapshot (data, no manifest) is never listed.
	half := filepath.Join(bdir, "c", "p1", "29991231T000000.000000000Z-e9")
	os.MkdirAll(half, 0o755)
	os.WriteFile(filepath.Join(half, DataFile), []byte("partial"), 0o644)
	if got, _ := b.List(ctx, 1); len(got) != 2 {
		t.Fatalf("a snapshot without manifest is listed: %v", got)
	}
	// Corrupt the newest: Restore falls back to the one before it.
	data := filepath.Join(bdir, "c", "p1", names[2], DataFile)
	raw, _ := os.ReadFile(data)
	raw[len(raw)/2] ^= 1
	os.WriteFile(data, raw, 0o644)
	dst, err := store.OpenBadger(store.BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var log strings.Builder
	m, ok, err := b.Restore(ctx, Want{Partition: 1, Range: rng4, Slots: 16}, dst, t.TempDir(), zerolog.New(&log))
	if err != nil || !ok || m.Name() != names[1] {
		t.Fatalf("Restore = %v %v %v, want %s", m.Name(), ok, err, names[1])
	}
	if !strings.Contains(log.String(), "unusable") || !strings.Contains(log.String(), names[2]) {
		t.Fatalf("the skipped snapshot is not in the log: %s", log.String())
	}
	if r, _ := dst.Get([]byte("k0")); string(r.Value.Data) != "mid0" {
		t.Fatalf("k0 = %q, want the previous snapshot's", r.Value.Data)
	}
	// A snapshot of another range is not used.
	other, err := store.OpenBadger(store.BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok, err := b.Restore(ctx, Want{Partition: 1, Range: keyspace.Range{From: 0, To: 8}, Slots: 16}, other, t.TempDir(), zerolog.Nop()); ok || err != nil {
		t.Fatalf("a snapshot of another range was used: %v %v", ok, err)
	}
}
