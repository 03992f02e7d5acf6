package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

func openCached(t *testing.T, durable Store, dir string) *Cached {
	t.Helper()
	c, err := OpenCached(durable, dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func put(t *testing.T, s Store, key, value string, version uint64, offset int64) {
	t.Helper()
	if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte(key), Value: []byte(value), Version: version}}, Offsets: map[int32]int64{0: offset}}); err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, s Store, key string) string {
	t.Helper()
	r, err := s.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Found {
		return "<absent>"
	}
	return string(r.Value.Data)
}

// Writes reach both stores; a read is served by the cache once cached: a
// change made to the durable store behind the cache's back is not seen.
func TestCachedWritesThroughAndServesReadsFromTheCache(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	c := openCached(t, durable, t.TempDir())
	defer c.Close()
	put(t, c, "a", "1", 1, 1)
	if got := value(t, durable, "a"); got != "1" {
		t.Fatalf("durable a = %s", got)
	}
	put(t, durable, "b", "old", 1, 2) // before the cache saw b: a miss fills it
	if got := value(t, c, "b"); got != "old" {
		t.Fatalf("b = %s", got)
	}
	if got := value(t, c, "never"); got != "<absent>" {
		t.Fatalf("never = %s", got)
	}
	put(t, durable, "a", "behind-the-back", 2, 3)
	put(t, durable, "b", "behind-the-back", 2, 4)
	put(t, durable, "never", "behind-the-back", 1, 5)
	for _, k := range []string{"a", "b"} {
		if got := value(t, c, k); got == "behind-the-back" {
			t.Fatalf("%s was read from the durable store, not the cache", k)
		}
	}
	if got := value(t, c, "never"); got != "<absent>" {
		t.Fatal("a missing key is not cached as absent")
	}
}

// A miss that read an old value never overwrites what an Apply wrote while
// the read was on its way: the reader is held after its durable read until
// the Apply is done.
func TestCachedFillNeverOverwritesANewerWrite(t *testing.T) {
	durable, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateStore{Store: durable}
	c := openCached(t, gate, t.TempDir())
	defer c.Close()
	put(t, durable, "k", "old", 1, 1) // behind the cache's back: a read misses
	read, proceed := make(chan struct{}), make(chan struct{})
	gate.afterRead = func() { close(read); <-proceed }
	got := make(chan string)
	go func() { got <- value(t, c, "k") }()
	<-read
	gate.afterRead = nil
	put(t, c, "k", "new", 2, 2)
	close(proceed)
	if v := <-got; v != "old" {
		t.Fatalf("the held read returned %s", v)
	}
	if v := value(t, c, "k"); v != "new" {
		t.Fatalf("after the fill the cache says k = %s, the durable store new", v)
	}
}

// gateStore calls afterRead after each read of the store, before answering.
type gateStore struct {
	Store
	afterRead func()
}

func (s *gateStore) GetMany(keys [][]byte) ([]kv.Read, error) {
	r, err := s.Store.GetMany(keys)
	if s.afterRead != nil {
		s.afterRead()
	}
	return r, err
}

// The cache is kept over a restart only if it was closed cleanly and reaches
// the durable store's offsets.
func TestCachedIsDroppedWhenBehindOrNotClosedCleanly(t *testing.T) {
	ddir, cdir := t.TempDir(), t.TempDir()
	open := func() (*Badger, *Cached) {
		d, err := OpenBadger(BadgerOptions(ddir))
		if err != nil {
			t.Fatal(err)
		}
		return d, openCached(t, d, cdir)
	}
	_, c0 := open()
	put(t, c0, "a", "1", 1, 1)
	c0.Close()

	d, c := open()
	if !c.Kept {
		t.Fatal("a clean cache at the durable store's offsets was dropped")
	}
	put(t, c, "a", "2", 2, 2)
	c.cache.Close() // a crash: the durable store is written, the cache not marked clean
	d.Close()

	_, c = open()
	if c.Kept {
		t.Fatal("a cache that was not closed cleanly was kept")
	}
	c.Close()

	var err error
	d, err = OpenBadger(BadgerOptions(ddir))
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, "a", "3", 3, 3) // the durable store moves on without the cache
	d.Close()
	if _, err := os.Stat(filepath.Join(cdir, cleanFile)); err != nil {
		t.Fatal("the cache was not marked clean")
	}
	_, c = open()
	defer c.Close()
	if c.Kept {
		t.Fatal("a cache behind the durable store was kept")
	}
	if got := value(t, c, "a"); got != "3" {
		t.Fatalf("a = %s after the cache was dropped", got)
	}
}

// slowStore delays every read of a store, standing in for a network disk:
// the answer comes back delay after the store was read.
type slowStore struct {
	Store
	delay time.Duration
}

func (s slowStore) Get(key []byte) (kv.Read, error) {
	r, err := s.Store.Get(key)
	time.Sleep(s.delay)
	return r, err
}

func (s slowStore) GetMany(keys [][]byte) ([]kv.Read, error) {
	r, err := s.Store.GetMany(keys)
	time.Sleep(s.delay)
	return r, err
}

// A cache dropped at an open (after a crash) over a durable store that
// holds offsets, ingest offsets and a clock is kept at the next open after a
// clean close, though no write reached it meanwhile: it starts with the
// durable store's offsets, ingest offsets and clock. (Issue 23.10: a
// dropped cache started empty, lacked the ingest offsets of every slot no
// ingest had reached since, and was dropped again at every start.)
func TestCachedDroppedOnceIsKeptAfterACleanClose(t *testing.T) {
	ddir, cdir := t.TempDir(), t.TempDir()
	open := func() (*Badger, *Cached) {
		d, err := OpenBadger(BadgerOptions(ddir))
		if err != nil {
			t.Fatal(err)
		}
		return d, openCached(t, d, cdir)
	}
	d, c := open()
	err := c.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("a"), Value: []byte("1"), Version: 1, Timestamp: 7}},
		Offsets: map[int32]int64{0: 5, 1: 3}, Ingest: map[int32]int64{0: 40, 1: 12}, Clock: 7})
	if err != nil {
		t.Fatal(err)
	}
	c.cache.Close() // a crash: the cache is not marked clean
	d.Close()

	_, c = open()
	if c.Kept {
		t.Fatal("a cache that was not closed cleanly was kept")
	}
	if got := value(t, c, "a"); got != "1" {
		t.Fatalf("a = %s", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, c = open()
	defer c.Close()
	if !c.Kept {
		t.Fatal("a cache closed cleanly in step with the durable store was dropped (it was dropped at the open before)")
	}
}
