package store

import (
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
