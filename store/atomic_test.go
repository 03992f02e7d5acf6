package store

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
)

func bigBatch(n int, tag string) kv.Write {
	b := kv.Write{Offsets: map[int32]int64{0: int64(n), 7: 3}, Ingest: map[int32]int64{2: 9}, Clock: 42}
	for i := range n {
		b.Changes = append(b.Changes, kv.Change{Key: fmt.Appendf(nil, "k%06d", i), Value: []byte(tag), Version: 1, Timestamp: 42})
	}
	return b
}

// A batch within one badger transaction and one far past it (an intent) are
// both written whole, and no intent is left behind.
func TestApplyAtomicSmallAndPastOneTransaction(t *testing.T) {
	s, err := OpenBadger(DurableBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{10, 60_000} { // 60,000 entries: past the transaction's entry bound
		b := bigBatch(n, fmt.Sprint("v", n))
		if err := s.ApplyAtomic(b); err != nil {
			t.Fatalf("%d changes: %v", n, err)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			r, err := s.Get(fmt.Appendf(nil, "k%06d", i))
			if err != nil || string(r.Value.Data) != fmt.Sprint("v", n) {
				t.Fatalf("%d changes: key %d = %+v %v", n, i, r, err)
			}
		}
		if off, _ := s.Offsets(); off[0] != int64(n) || off[7] != 3 {
			t.Fatalf("offsets %v", off)
		}
	}
	if present(t, s, metaIntent) {
		t.Fatal("an intent was left behind")
	}
}

// A crash after the intent was written and part of the batch applied:
// opening the store applies the whole batch and removes the intent.
func TestOpenFinishesAnIntentLeftByACrash(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadger(DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	b := bigBatch(1000, "whole")
	half := kv.Write{Changes: b.Changes[:300]} // no offsets: as a cut Apply leaves it
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaIntent, encodeBatch(b)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(half); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenBadger(DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	s.Each(func(k []byte, v kv.Value) bool {
		if string(v.Data) == "whole" {
			n++
		}
		return true
	})
	if off, _ := s.Offsets(); n != 1000 || off[0] != 1000 {
		t.Fatalf("after reopening: %d of 1000 keys, offsets %v", n, off)
	}
	if present(t, s, metaIntent) {
		t.Fatal("the intent is still there")
	}
}

func present(t *testing.T, s *Badger, key []byte) bool {
	t.Helper()
	found := false
	s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(key)
		found = err == nil
		return nil
	})
	return found
}

func TestBatchCodecRoundTrip(t *testing.T) {
	b := kv.Write{
		Changes: []kv.Change{
			{Key: []byte("a"), Value: []byte("1"), Version: 3, Timestamp: 77, ExpiresAt: 9},
			{Key: []byte("b"), Remove: true, Version: 4, Timestamp: 78},
			{Key: []byte("c"), Value: []byte{}, Version: 1},
		},
		Offsets: map[int32]int64{0: 5, 15: 1 << 40},
		Ingest:  map[int32]int64{3: 7},
		Clock:   1 << 50,
	}
	got, err := decodeBatch(encodeBatch(b))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Changes { // an empty value decodes as a non-nil empty slice or nil: both are empty
		if len(got.Changes[i].Value) == 0 && !got.Changes[i].Remove {
			got.Changes[i].Value = b.Changes[i].Value
		}
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
	}
	for cut := range len(encodeBatch(b)) {
		if _, err := decodeBatch(encodeBatch(b)[:cut]); err == nil {
			t.Fatalf("a batch cut at %d bytes decoded", cut)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch(bigBatch(3, "x")))
	f.Add([]byte{batchFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := decodeBatch(raw)
		if err != nil {
			return
		}
		again, err := decodeBatch(encodeBatch(b))
		if err != nil || len(again.Changes) != len(b.Changes) {
			t.Fatalf("re-encoding a decoded batch: %v", err)
		}
		for i := range b.Changes {
			if !bytes.Equal(again.Changes[i].Key, b.Changes[i].Key) {
				t.Fatal("keys differ")
			}
		}
	})
}
