package partition

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sluicedb/sluice/store"
)

// --store cached under the simulator ("kafka+cached", "disk+cached"): each
// owner's driver reads and writes the real store.Cached, a Badger cache in a
// folder of its own over the owner's durable store with faults (its reads
// fail now and then; in disk+cached its synced writes fail too, and the
// Disk's appender writes it behind the cache's back). As node/cache.go
// does, each restore makes the cache current once the new appender has
// fenced the older ones: the process's first restore keeps it if it is in
// step, every later one (a re-sync) drops it (Cached.AtRestore). A killed
// process leaves its cache unmarked (no clean close), so the one restarted
// on the same folders drops it at open.
//
// The promise checked at the end (README, "the cache after a re-sync or
// restart": never behind the durable store): every key the owner's cache
// answers equals what its durable store holds.

// simCacheRoot is where the caches' folders go: memory (/dev/shm) where
// there is one, as the cache's fast local disk, so a seed costs little more
// than one of another mode.
func simCacheRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

// openCache opens the owner's cache over its durable store, in dir or, if
// dir is "", in a new folder.
func (in *inst) openCache(dir string) {
	w := in.w
	if dir == "" {
		dir = filepath.Join(w.cacheRoot, "i"+strconv.Itoa(in.id))
	}
	durable := store.Store(simDurable{in})
	if in.disk != nil {
		durable = in.disk.Store()
	}
	c, err := store.OpenCached(durable, dir)
	if err != nil {
		panic(err)
	}
	in.cached, in.cacheDir = c, dir
}

// resyncCache is node/cache.go's resyncCache: after the new appender (or
// its refusal), the cache is made current by store.Cached.AtRestore, the
// rule node runs (the process's first restore may keep it).
func (in *inst) resyncCache() error {
	if in.cached == nil {
		return nil
	}
	kept, first, err := in.cached.AtRestore()
	in.w.trace("i%d cache re-sync: kept %v (first %v), err %v", in.id, kept, first, err)
	return err
}

// crashCache is the cache's part of a kill -9: the process's Badger is gone
// and no clean mark is left.
func (in *inst) crashCache() {
	if in.cached == nil {
		return
	}
	in.closeCache()
	if err := os.Remove(filepath.Join(in.cacheDir, "clean")); err != nil && !os.IsNotExist(err) {
		panic(err)
	}
}

// closeCache closes the owner's cache (its durable store is the world's).
func (in *inst) closeCache() {
	if in.cached == nil {
		return
	}
	_ = in.cached.Close()
	in.cached = nil
}

// simCacheCheck checks that the owner's cache is not behind its durable
// store: each key reads the same through the cache as from the durable
// store.
func simCacheCheck(w *world) string {
	o := w.owner
	if o.cached == nil {
		return ""
	}
	for _, k := range append(append([]string{}, simKeys...), simCounters...) {
		got, err := o.cached.Get([]byte(k))
		if err != nil {
			return fmt.Sprintf("the cache's read of %s failed: %v", k, err)
		}
		want, _ := o.st.Get([]byte(k))
		if got.Found != want.Found || got.Value.Version != want.Value.Version || string(got.Value.Data) != string(want.Value.Data) {
			return fmt.Sprintf("the write-through cache is behind the durable store: %s is %q v%d (found %v) in the cache, %q v%d (found %v) in the durable store",
				k, got.Value.Data, got.Value.Version, got.Found, want.Value.Data, want.Value.Version, want.Found)
		}
	}
	return ""
}

// closeCaches closes every owner's cache and removes their folders.
func (w *world) closeCaches() {
	w.readCache.Close()
	for _, in := range w.insts {
		in.closeCache()
	}
	if w.cacheRoot != "" {
		os.RemoveAll(w.cacheRoot)
	}
}
