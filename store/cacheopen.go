package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Opening the cache's Badger. The cache is disposable: a cache that does not
// open (an error, or a panic in badger over a corrupt table: the outside
// tester's D4, "index out of range … Recovering from initIndex crash" in
// table.OpenTable, which tablesOpen meets first) is removed and made anew;
// it never stops a partition, or the node, from starting. A fault on one of badger's memory-mapped files
// (SIGBUS: the cache's disk is full, or failing) during the open is a panic
// too (debug.SetPanicOnFault), recovered the same way. A disk without room
// for a new cache's files is refused before badger maps them (ErrCacheNoRoom):
// the caller serves without the cache.

// ErrCacheNoRoom says the cache's disk has no room for a cache's files.
var ErrCacheNoRoom = errors.New("store: cache: no room on the cache's disk")

// cacheRoom is what a new cache's Badger maps at once: two memtables and a
// value log file (BadgerOptions), and some slack.
const cacheRoom = 2*(8<<20) + 64<<20 + 16<<20

// openBadger opens a Badger; a test replaces it to make the open fail.
var openBadger = OpenBadger

// openCache opens the cache's Badger in dir, or, if that fails, removes it
// and opens a new one; dropped says why it had to.
func openCache(dir string) (cache *Badger, dropped, err error) {
	cache, err = openRecovered(dir)
	if err == nil {
		return cache, nil, nil
	}
	dropped = err
	if err := os.RemoveAll(dir); err != nil {
		return nil, dropped, fmt.Errorf("removing a cache that does not open (%w): %w", dropped, err)
	}
	if err := hasRoom(dir); err != nil {
		return nil, dropped, err
	}
	cache, err = openRecovered(dir)
	if err != nil {
		return nil, dropped, fmt.Errorf("a new cache after one that did not open (%w): %w", dropped, err)
	}
	return cache, dropped, nil
}

// openRecovered is openBadger with a panic, or a fault on a mapped file,
// turned into an error.
func openRecovered(dir string) (cache *Badger, err error) {
	if err := hasRoom(dir); err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			cache, err = nil, fmt.Errorf("badger panicked opening the cache: %v", r)
		}
	}()
	if err := tablesOpen(dir); err != nil {
		return nil, err
	}
	return openBadger(BadgerOptions(dir))
}

// tablesOpen opens each of the cache's tables as badger's open will, here,
// where a panic is recovered: badger opens them in goroutines of its own,
// where a corrupt table's panic (table.OpenTable's "Recovering from
// initIndex crash") stops the process.
func tablesOpen(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return err
	}
	for _, name := range names {
		mf, err := z.OpenMmapFile(name, os.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("opening table %s: %w", name, err)
		}
		t, err := table.OpenTable(mf, table.Options{Compression: options.None, ChkMode: options.NoVerification})
		if err != nil {
			return fmt.Errorf("opening table %s: %w", name, err)
		}
		t.MmapFile.Close(-1) // not DecrRef, which deletes the file
	}
	return nil
}
