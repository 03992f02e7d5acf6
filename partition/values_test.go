package partition

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
)

// fillOne is what the cache gives a write of key: its version, or ok false
// (a store read).
func fillOne(c *values, key string) (version uint64, ok bool) {
	req := &core.Request{Op: core.OpUpsert, Entries: []kv.Entry{{Key: []byte(key)}}, Reads: make([]core.Read, 1)}
	c.Fill(req, 0)
	return req.Reads[0].Value.Version, req.Reads[0].OK
}

// applied is the loop's store write of key at version.
func applied(c *values, key string, version uint64) {
	c.Writing()
	c.Wrote([]kv.Change{{Key: []byte(key), Value: []byte("v"), Version: version}}, nil)
}

// The cache holds only what the store holds: every write overwrites the
// key's entry, a read from the store is remembered as read, a reset (the
// store rewritten) and a failed write forget everything, and a disabled
// cache holds nothing. A key it does not hold is a store read; it never
// answers an older version.
func TestValuesAreNeverStale(t *testing.T) {
	rc := NewReadCache(1 << 20)
	defer rc.Close()
	c := newValues(rc)
	for v := uint64(1); v <= 5; v++ {
		applied(c, "k", v)
		if got, ok := fillOne(c, "k"); !ok || got != v {
			t.Fatalf("after writing version %d the cache gives %d %v", v, got, ok)
		}
	}
	c.Writing()
	c.Wrote([]kv.Change{{Key: []byte("k"), Remove: true, Version: 6}}, nil)
	req := &core.Request{Op: core.OpGet, Key: []byte("k"), Reads: make([]core.Read, 1)}
	c.Fill(req, 0)
	if r := req.Reads[0]; !r.OK || r.Found || r.Value.Version != 6 {
		t.Fatalf("after a removal the cache gives %+v, want a tombstone at version 6", r)
	}
	c.Read([]byte("r"), kv.Read{Value: kv.Value{Data: []byte("x"), Version: 9}, Found: true})
	if got, ok := fillOne(c, "r"); !ok || got != 9 {
		t.Fatalf("a store read of r at version 9 gives %d %v", got, ok)
	}
	// A key the caller read itself is left as the caller read it.
	req = &core.Request{Op: core.OpUpsert, Entries: []kv.Entry{{Key: []byte("r")}}, Reads: []core.Read{{OK: true, Read: kv.Read{Value: kv.Value{Version: 11}}}}}
	c.Fill(req, 0)
	if req.Reads[0].Value.Version != 11 {
		t.Fatalf("the cache overwrote the caller's read: %+v", req.Reads[0])
	}
	c.Reset(false)
	for _, k := range []string{"k", "r"} {
		if _, ok := fillOne(c, k); ok {
			t.Fatalf("%s is cached after a reset", k)
		}
	}
	// A failed store write may have written some of its changes: nothing
	// cached before it is used after it.
	applied(c, "f", 1)
	c.Writing()
	c.Wrote([]kv.Change{{Key: []byte("f"), Value: []byte("v"), Version: 2}}, fmt.Errorf("disk full"))
	if v, ok := fillOne(c, "f"); ok {
		t.Fatalf("after a failed write the cache gives version %d", v)
	}
	off := newValues(NewReadCache(0))
	applied(off, "k", 1)
	if _, ok := fillOne(off, "k"); ok {
		t.Fatal("a disabled cache answered")
	}
	// A value too large for the cache is held without its data: writes
	// that need no data are answered, reads of it are not.
	big := make([]byte, rc.maxValue+1)
	c.Writing()
	c.Wrote([]kv.Change{{Key: []byte("big"), Value: big, Version: 3}}, nil)
	if v, ok := fillOne(c, "big"); !ok || v != 3 {
		t.Fatalf("a large value's version: %d %v", v, ok)
	}
	req = &core.Request{Op: core.OpGet, Key: []byte("big"), Reads: make([]core.Read, 1)}
	c.Fill(req, 0)
	if req.Reads[0].OK {
		t.Fatal("a get was answered from an entry without its data")
	}
}

// A value written is cached as a copy: the caller's buffer, reused after
// its write, does not change what the cache answers.
func TestValuesCopyWhatIsWritten(t *testing.T) {
	rc := NewReadCache(1 << 20)
	defer rc.Close()
	c := newValues(rc)
	buf := []byte("first")
	c.Writing()
	c.Wrote([]kv.Change{{Key: []byte("k"), Value: buf, Version: 1}}, nil)
	copy(buf, "XXXXX")
	if e, ok := c.get([]byte("k")); !ok || string(e.data) != "first" {
		t.Fatalf("cached %q %v, want first", e.data, ok)
	}
}

// A read outside the loop that raced a store write never puts back the
// value the write replaced: the fill of a value read before (or during)
// a write is refused.
func TestAFillRacingAWriteIsRefused(t *testing.T) {
	rc := NewReadCache(1 << 20)
	defer rc.Close()
	c := newValues(rc)
	old := kv.Read{Value: kv.Value{Data: []byte("old"), Version: 1}, Found: true}

	seq, _ := c.begin() // the reader reads "old" from the store...
	applied(c, "k", 2)  // ...the loop writes version 2...
	c.fill([]byte("k"), old, seq)
	if e, ok := c.get([]byte("k")); !ok || e.version != 2 {
		t.Fatalf("after the racing fill the cache holds %+v %v, want version 2", e, ok)
	}

	// The write's entry evicted, the late fill must still be refused.
	c.Reset(false)
	seq, _ = c.begin()
	applied(c, "j", 2)
	c.Reset(false) // the entry is gone (a new generation), as if evicted
	c.fill([]byte("j"), old, seq)
	if e, ok := c.get([]byte("j")); ok {
		t.Fatalf("a fill begun before a write put back %+v", e)
	}

	// A fill begun while a write is in progress is refused.
	c.Writing()
	seq, ok := c.begin()
	if ok {
		t.Fatal("begin during a store write says the cache is at one point")
	}
	c.fill([]byte("w"), old, seq)
	c.Wrote(nil, nil)
	if _, ok := c.get([]byte("w")); ok {
		t.Fatal("a fill begun during a store write was cached")
	}
}

// Readers outside the loop and the loop writing one store, at once: a read
// never answers a version older than one the loop had written before the
// read began, and when the loop stops the cache holds what the store does.
func TestValuesUnderConcurrentReadsAndWrites(t *testing.T) {
	rc := NewReadCache(1 << 20)
	defer rc.Close()
	st := store.NewMemory()
	defer st.Close()
	v := &view{st: st, cache: newValues(rc)}
	const keys, writes = 4, 3000
	var written [keys]atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (r + i) % keys
				floor := written[k].Load()
				got, err := v.get(fmt.Appendf(nil, "k%d", k))
				if err != nil {
					t.Error(err)
					return
				}
				if got.Value.Version < floor {
					t.Errorf("k%d: read version %d after version %d was written", k, got.Value.Version, floor)
					return
				}
			}
		}()
	}
	for i := range writes {
		k := i % keys
		ver := written[k].Load() + 1
		ch := kv.Change{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "v%d", ver), Version: ver}
		v.cache.Writing()
		err := st.Apply(kv.Write{Changes: []kv.Change{ch}})
		v.cache.Wrote([]kv.Change{ch}, err)
		if err != nil {
			t.Fatal(err)
		}
		written[k].Store(ver)
		if i%7 == 0 {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	for k := range keys {
		key := fmt.Appendf(nil, "k%d", k)
		want, _ := st.Get(key)
		if e, ok := v.cache.get(key); ok && (e.version != want.Value.Version || string(e.data) != string(want.Value.Data)) {
			t.Fatalf("k%d: cached version %d %q, the store holds %d %q", k, e.version, e.data, want.Value.Version, want.Value.Data)
		}
	}
}

// The cache's byte budget holds with a scan of 1,000,000 keys through it:
// what it counts stays within the budget, and what the heap grew by is
// within the budget too (entryOverhead is not an underestimate).
func TestReadCacheStaysWithinItsBudget(t *testing.T) {
	const budget = 16 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rc := NewReadCache(budget)
	defer rc.Close()
	c := newValues(rc)
	val := make([]byte, 100)
	for i := range 1_000_000 {
		c.Read(fmt.Appendf(nil, "key-%07d", i), kv.Read{Value: kv.Value{Data: append([]byte(nil), val...), Version: 1}, Found: true})
	}
	rc.c.CleanUp()
	if used := rc.Used(); used > budget {
		t.Fatalf("the cache counts %d bytes, over its budget of %d", used, budget)
	}
	if rc.Keys() < 1000 {
		t.Fatalf("the cache holds %d keys: it should hold about %d", rc.Keys(), budget/(100+11+entryOverhead))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d keys held, %d bytes counted, the heap grew %d bytes", rc.Keys(), rc.Used(), grew)
	if grew > budget*5/4 {
		t.Fatalf("the heap grew %d bytes holding a cache of %d bytes: entryOverhead (%d) underestimates an entry", grew, budget, entryOverhead)
	}
}
