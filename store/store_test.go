package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"
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
		err := s.Apply(Batch{
			Changes: []Change{
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
		if err := s.Apply(Batch{Changes: []Change{{Key: []byte("b"), Remove: true}}, Offsets: map[int32]int64{3: 11}}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		v, ok, err := s.Get([]byte("a"))
		if err != nil || !ok || string(v.Data) != "3" || v.Version != 2 || v.Timestamp != 12 {
			t.Fatalf("Get(a) = %+v %v %v", v, ok, err)
		}
		if _, ok, _ := s.Get([]byte("b")); ok {
			t.Fatal("removed key still there")
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
		if err := s.Apply(Batch{Changes: []Change{{Key: []byte("clock"), Value: []byte("x"), Version: 1}, {Key: offsetKey(1), Value: []byte("y"), Version: 1}}}); err != nil {
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
		var cs []Change
		for i := 9; i >= 0; i-- {
			cs = append(cs, Change{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte{byte(i)}, Version: 1})
		}
		if err := s.Apply(Batch{Changes: cs}); err != nil {
			t.Fatal(err)
		}
		var prev []byte
		n := 0
		err := s.Each(func(k []byte, v Value) bool {
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
		if err := s.Apply(Batch{Changes: []Change{{Key: []byte("ttl"), Value: []byte("v"), Version: 1, ExpiresAt: later}}}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		v, ok, err := s.Get([]byte("ttl"))
		if err != nil || !ok || v.ExpiresAt != later || v.Expired(time.Now()) || !v.Expired(time.Now().Add(2*time.Hour)) {
			t.Fatalf("Get(ttl) = %+v %v %v", v, ok, err)
		}
	})
}

// Badger itself hides an expired value.
func TestBadgerHidesExpired(t *testing.T) {
	s, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	past := uint64(time.Now().Add(-time.Minute).UnixMilli())
	if err := s.Apply(Batch{Changes: []Change{{Key: []byte("old"), Value: []byte("v"), Version: 1, ExpiresAt: past}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get([]byte("old")); ok {
		t.Fatal("an expired value is visible")
	}
}
