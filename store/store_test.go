package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// Both implementations keep the same contract.
func eachStore(t *testing.T, fn func(t *testing.T, s Store, reopen func() Store)) {
	t.Run("badger", func(t *testing.T) {
		dir := t.TempDir()
		s, err := OpenBadger(BadgerOptions(dir))
		if err != nil {
			t.Fatal(err)
		}
		cur := Store(s)
		t.Cleanup(func() { cur.Close() })
		fn(t, s, func() Store {
			cur.Close()
			s2, err := OpenBadger(BadgerOptions(dir))
			if err != nil {
				t.Fatal(err)
			}
			cur = s2
			return s2
		})
	})
	t.Run("memory", func(t *testing.T) {
		m := NewMemory()
		fn(t, m, func() Store { return m })
	})
}

func TestApplyGetRemove(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reopen func() Store) {
		err := s.Apply(kv.Write{
			Changes: []kv.Change{
				{Key: []byte("a"), Value: []byte("1"), Version: 1, Timestamp: 10},
				{Key: []byte("b"), Value: []byte("2"), Version: 1, Timestamp: 11},
				{Key: []byte("a"), Value: []byte("3"), Version: 2, Timestamp: 12},
			},
			Offsets: map[int32]int64{0: 5, 3: 9},
			Ingest:  map[int32]int64{3: 77},
			Clock:   12,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("b"), Remove: true, Version: 2, Timestamp: uint64(time.Now().UnixMilli()) << 16}}, Offsets: map[int32]int64{3: 11}}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		r, err := s.Get([]byte("a"))
		if v := r.Value; err != nil || !r.Found || string(v.Data) != "3" || v.Version != 2 || v.Timestamp != 12 {
			t.Fatalf("Get(a) = %+v %v", r, err)
		}
		// A removed key is absent, and keeps its version as a tombstone.
		if r, _ := s.Get([]byte("b")); r.Found || r.Value.Version != 2 || r.Value.Data != nil {
			t.Fatalf("removed key reads %+v, want absent at version 2", r)
		}
		if reads, _ := s.GetMany([][]byte{[]byte("a"), []byte("b"), []byte("c")}); !reads[0].Found || reads[1].Found || reads[1].Value.Version != 2 || reads[2].Found || reads[2].Value.Version != 0 {
			t.Fatalf("GetMany = %+v", reads)
		}
		offs, err := s.Offsets()
		if err != nil || offs[0] != 5 || offs[3] != 11 || len(offs) != 2 {
			t.Fatalf("Offsets = %v %v", offs, err)
		}
		if in, err := s.IngestOffsets(); err != nil || in[3] != 77 || len(in) != 1 {
			t.Fatalf("IngestOffsets = %v %v", in, err)
		}
		if c, _ := s.Clock(); c != 12 {
			t.Fatalf("Clock = %d", c)
		}
		if n, _ := s.Len(); n != 1 {
			t.Fatalf("Len = %d", n)
		}
	})
}

// A user key that looks like metadata stays data.
func TestUserKeysNeverHitMetadata(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ func() Store) {
		if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("clock"), Value: []byte("x"), Version: 1}, {Key: offsetKey(1), Value: []byte("y"), Version: 1}}}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Clock(); c != 0 {
			t.Fatalf("user key changed the clock: %d", c)
		}
		if offs, _ := s.Offsets(); len(offs) != 0 {
			t.Fatalf("user key changed offsets: %v", offs)
		}
	})
}

func TestEachInKeyOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ func() Store) {
		var cs []kv.Change
		for i := 9; i >= 0; i-- {
			cs = append(cs, kv.Change{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte{byte(i)}, Version: 1})
		}
		if err := s.Apply(kv.Write{Changes: cs}); err != nil {
			t.Fatal(err)
		}
		var prev []byte
		n := 0
		err := s.Each(func(k []byte, v kv.Value) bool {
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				t.Fatalf("out of order: %q then %q", prev, k)
			}
			prev = k
			n++
			return true
		})
		if err != nil || n != 10 {
			t.Fatalf("Each visited %d, err %v", n, err)
		}
	})
}

func TestDecodeValueRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {0x80}, {0x01, 0x80}} {
		if _, err := decodeValue(b); err == nil {
			t.Fatalf("decodeValue(%x) accepted", b)
		}
	}
}

func TestExpiryRoundTrips(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reopen func() Store) {
		later := uint64(time.Now().Add(time.Hour).UnixMilli())
		if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("ttl"), Value: []byte("v"), Version: 1, ExpiresAt: later}}}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		r, err := s.Get([]byte("ttl"))
		if v := r.Value; err != nil || !r.Found || v.ExpiresAt != later || v.Expired(time.Now()) || !v.Expired(time.Now().Add(2*time.Hour)) {
			t.Fatalf("Get(ttl) = %+v %v", r, err)
		}
	})
}

// An expired value is not live (Len, Each and kv.Read.Live skip it) but keeps
// its version, as a tombstone does, so the next write continues from it.
func TestExpiredKeepsItsVersion(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reopen func() Store) {
		past := uint64(time.Now().Add(-time.Minute).UnixMilli())
		if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("old"), Value: []byte("v"), Version: 3, ExpiresAt: past}}}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		r, err := s.Get([]byte("old"))
		if err != nil {
			t.Fatal(err)
		}
		if live := r.Live(time.Now()); live.Found || live.Value.Version != 3 {
			t.Fatalf("expired value reads %+v live, want absent at version 3", live)
		}
		if n, _ := s.Len(); n != 0 {
			t.Fatalf("Len counts an expired value: %d", n)
		}
	})
}
