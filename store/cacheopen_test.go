package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// The outside tester's D4: badger panicked opening a corrupt cache ("index
// out of range … Recovering from initIndex crash" in table.OpenTable) and
// took the node down. The cache is disposable: it is removed and made anew.
func TestACacheWhoseOpenPanicsIsMadeAnew(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer durable.Close()
	put(t, durable, "k", "v", 1, 1)
	panics := 1
	openBadger = func(opts badger.Options) (*Badger, error) {
		if panics > 0 {
			panics--
			var tables []int
			_ = tables[3] // as table.OpenTable on a corrupt table
		}
		return OpenBadger(opts)
	}
	t.Cleanup(func() { openBadger = OpenBadger })
	c, err := OpenCached(durable, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Dropped == nil || c.Kept {
		t.Fatalf("Dropped %v, Kept %v: want the panic, and a new cache", c.Dropped, c.Kept)
	}
	if got := value(t, c, "k"); got != "v" {
		t.Fatalf("k = %q", got)
	}
}

// A cache whose files are corrupt (its disk failed under a clean close)
// does not open: it is removed and made anew, and serves the durable
// store's state.
func TestACacheThatDoesNotOpenIsMadeAnew(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer durable.Close()
	dir := t.TempDir()
	c := openCached(t, durable, dir)
	put(t, c, "k", "v", 1, 1)
	if err := c.cache.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cleanFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "badger", "MANIFEST"), []byte("garbage, not a manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = OpenCached(durable, dir)
	if err != nil {
		t.Fatalf("a cache that does not open stopped the partition: %v", err)
	}
	defer c.Close()
	if c.Dropped == nil || c.Kept {
		t.Fatalf("Dropped %v, Kept %v: want the open's error, and a new cache", c.Dropped, c.Kept)
	}
	if got := value(t, c, "k"); got != "v" {
		t.Fatalf("k = %q", got)
	}
}

// A cache that cannot be read is not used again (until the next open drops
// it) and never passes for a corrupt durable store: reads go to the durable
// store.
func TestACacheThatCannotBeReadFallsToTheDurableStore(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer durable.Close()
	c := openCached(t, durable, t.TempDir())
	put(t, c, "k", "v", 1, 1)
	if err := c.cache.Close(); err != nil { // every read of it fails
		t.Fatal(err)
	}
	if got := value(t, c, "k"); got != "v" {
		t.Fatalf("k = %q", got)
	}
	if !c.broken.Load() {
		t.Fatal("the cache that could not be read is still used")
	}
}

// The outside tester's D4 as it happened: a table of a cleanly closed cache
// is corrupt, and badger, which opens its tables in goroutines of its own,
// panics on it there ("index out of range … Recovering from initIndex
// crash"), where no caller can recover. The cache's tables are opened first
// where the panic is recovered: the cache is made anew.
func TestACacheWithACorruptTableIsMadeAnew(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer durable.Close()
	dir := t.TempDir()
	c := openCached(t, durable, dir)
	for i := range 100 {
		put(t, c, fmt.Sprint("k", i), "v", 1, int64(i+1))
	}
	if err := c.cache.Close(); err != nil { // writes its memtable out as a table
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cleanFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "badger", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("the cache wrote no table")
	}
	// Its disk lost what was written to it: zeros where the table was (its
	// footer then says an index of 0 bytes, with a checksum that matches,
	// and reading it panics: the tester's "index out of range [3] with
	// length 0").
	fi, err := os.Stat(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tables[0], make([]byte, fi.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = OpenCached(durable, dir)
	if err != nil {
		t.Fatalf("a cache with a corrupt table stopped the partition: %v", err)
	}
	defer c.Close()
	if c.Dropped == nil || c.Kept {
		t.Fatalf("Dropped %v, Kept %v: want the corrupt table, and a new cache", c.Dropped, c.Kept)
	}
	if got := value(t, c, "k7"); got != "v" {
		t.Fatalf("k7 = %q", got)
	}
}
