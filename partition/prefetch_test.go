package partition

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

// Many writers on few keys, with a version cache of two keys: prefetched
// values go stale between the caller's read and the loop all the time, and
// cached versions are evicted all the time. Every key's versions must still
// come out gapless and unique: no write built on a stale version.
func TestVersionsStayExactUnderStalePrefetchesAndEviction(t *testing.T) {
	for _, cacheKeys := range []int{-1, 2, 1 << 16} {
		t.Run(fmt.Sprint("cache=", cacheKeys), func(t *testing.T) {
			cfg := testConfig(newFakeLog(), store.NewMemory())
			cfg.VersionCacheKeys = cacheKeys
			p := startServing(t, cfg)
			const writers, writes, keys = 8, 150, 5
			var (
				mu  sync.Mutex
				got = map[string][]uint64{}
				wg  sync.WaitGroup
			)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range writes {
						k := fmt.Sprint("k", (w+i)%keys)
						es := []pipeline.Entry{{Key: []byte(k), Value: []byte("v")}}
						if i%3 == 0 { // two entries of one key in one batch
							es = append(es, es[0])
						}
						res, err := p.Upsert(context.Background(), es)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for _, r := range res {
							got[k] = append(got[k], r.Version)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for k, vs := range got {
				slices.Sort(vs)
				for i, v := range vs {
					if v != uint64(i+1) {
						t.Fatalf("%s: versions %v…: not 1..%d", k, vs[:min(len(vs), i+3)], len(vs))
					}
				}
				v, found, err := p.Get(context.Background(), []byte(k))
				if err != nil || !found || v.Version != uint64(len(vs)) {
					t.Fatalf("Get(%s) = v%d %v %v, want v%d", k, v.Version, found, err, len(vs))
				}
			}
		})
	}
}

// The loop's check of a prefetched value, step by step.
func TestPrefetchedValueUsedOnlyWhileCurrent(t *testing.T) {
	st := store.NewMemory()
	p := &Partition{cfg: Config{Store: st}, versions: newVersions(-1)}
	s := &p.state
	s.init(p)
	put := func(key string, version uint64) {
		c := store.Change{Key: []byte(key), Value: []byte("x"), Version: version}
		if err := st.Apply(store.Batch{Changes: []store.Change{c}}); err != nil {
			t.Fatal(err)
		}
		s.applied.note(p, []store.Change{c})
	}
	put("a", 1)
	stale := func(key string, version uint64, seen uint64) *request {
		return &request{op: opRemove, key: []byte(key), seen: seen,
			pre: []prefetched{{Read: store.Read{Value: store.Value{Version: version}, Found: true}, ok: true}}}
	}
	version := func(req *request) uint64 {
		v, _, err := s.lookup(req, 0)
		if err != nil {
			t.Fatal(err)
		}
		return v.Version
	}
	// Current: the prefetch is used (it differs from the store on purpose, to tell).
	if v := version(stale("a", 7, p.applies.Load())); v != 7 {
		t.Fatalf("a prefetch after the last write was not used: got v%d", v)
	}
	// The key was written after the prefetch: the store's value wins.
	seen := p.applies.Load()
	put("a", 2)
	if v := version(stale("a", 1, seen)); v != 2 {
		t.Fatalf("stale prefetch used: got v%d, want v2", v)
	}
	// Another key was written after the prefetch: still current.
	put("b", 1)
	if v := version(stale("a", 9, p.applies.Load()-1)); v != 9 {
		t.Fatalf("a prefetch still current was not used: got v%d", v)
	}
	// Writes since the prefetch are forgotten: it cannot be checked, the store wins.
	seen = p.applies.Load()
	for range recentApplies + 1 {
		put("b", 1)
	}
	if v := version(stale("a", 5, seen)); v != 2 {
		t.Fatalf("unverifiable prefetch used: got v%d, want v2", v)
	}
	// A restore rewrote the store: nothing read before counts.
	seen = p.applies.Load()
	s.applied.reset(p)
	if v := version(stale("a", 5, seen)); v != 2 {
		t.Fatalf("prefetch from before a restore used: got v%d, want v2", v)
	}
}

func TestVersionCacheIsBoundedAndExact(t *testing.T) {
	c := newVersions(3)
	for i := range 10 {
		k := fmt.Sprint("k", i)
		c.applied([]string{k}, []store.Change{{Key: []byte(k), Version: uint64(i + 1)}})
	}
	if len(c.m) != 3 {
		t.Fatalf("cache holds %d keys, bound 3", len(c.m))
	}
	c.applied([]string{"k9"}, []store.Change{{Key: []byte("k9"), Version: 11, Remove: true}})
	if v, ok := c.get([]byte("k9")); !ok || v.found || v.n != 11 {
		t.Fatalf("k9 after removal = %+v %v", v, ok)
	}
	c.reset()
	if _, ok := c.get([]byte("k9")); ok {
		t.Fatal("reset kept an entry")
	}
}
