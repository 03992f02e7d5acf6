package store

import "testing"

// Resync keeps a cache in step if asked to, and otherwise drops it: a
// value the durable store got behind the cache's back is read from it then,
// and a miss's fill of a durable read made before the drop is not written.
func TestCachedResyncDropsWhatTheDurableStoreMovedPast(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateStore{Store: durable}
	c := openCached(t, gate, t.TempDir())
	defer c.Close()
	put(t, c, "k", "v1", 1, 1)
	if kept, err := c.Resync(true); err != nil || !kept {
		t.Fatalf("Resync(true) of a cache in step: kept %v, %v", kept, err)
	}
	put(t, durable, "k", "v2", 2, 2) // behind the cache's back (a log that is the store)
	if kept, err := c.Resync(true); err != nil || kept {
		t.Fatalf("Resync(true) of a cache behind: kept %v, %v", kept, err)
	}
	if got := value(t, c, "k"); got != "v2" {
		t.Fatalf("after Resync k = %s, the durable store holds v2", got)
	}

	// A miss reads "old" from the durable store; the store moves on behind
	// the cache's back and the cache is dropped before the fill.
	put(t, durable, "m", "old", 1, 3)
	read, proceed := make(chan struct{}), make(chan struct{})
	gate.afterRead = func() { close(read); <-proceed }
	got := make(chan string)
	go func() { got <- value(t, c, "m") }()
	<-read
	gate.afterRead = nil
	put(t, durable, "m", "new", 2, 4)
	if _, err := c.Resync(false); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	<-got
	if v := value(t, c, "m"); v != "new" {
		t.Fatalf("m = %s after the drop, the durable store holds new", v)
	}
}

// AtRestore is node's rule for the cache at each restore of its partition:
// the first since the cache was opened keeps a cache in step; every later
// one (a re-sync) drops it, in step or not.
func TestCachedAtRestoreKeepsOnlyAtTheFirst(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	c := openCached(t, durable, t.TempDir())
	defer c.Close()
	put(t, c, "k", "v1", 1, 1)
	if kept, first, err := c.AtRestore(); err != nil || !kept || !first {
		t.Fatalf("the first restore of a cache in step: kept %v, first %v, %v", kept, first, err)
	}
	put(t, c, "k", "v2", 2, 2)
	for i := range 2 {
		if kept, first, err := c.AtRestore(); err != nil || kept || first {
			t.Fatalf("re-sync %d of a cache in step: kept %v, first %v, %v", i+1, kept, first, err)
		}
	}
	if got := value(t, c, "k"); got != "v2" {
		t.Fatalf("after the drops k = %s, the durable store holds v2", got)
	}
}
