package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicedb/sluice/kv"
)

// A store that is its own write-ahead log keeps every value sluice accepts
// (an Upsert's values are under 1 MiB with their keys) out of badger's value
// log: badger only logs a failed sync of its value log (value.go, write's
// deferred Sync), and the write is acknowledged; a failed sync of its
// memtable's log it returns (issue 22.7).
func TestDurableStoreKeepsValuesOutOfTheValueLog(t *testing.T) {
	s, err := OpenBadger(DurableBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := bytes.Repeat([]byte("v"), kv.MaxBatchBytes-64)
	for _, n := range []int{100, 100 << 10, len(big)} {
		key := fmt.Appendf(nil, "k%d", n)
		if err := s.ApplyAtomic(kv.Write{Changes: []kv.Change{{Key: key, Value: big[:n], Version: 1}}, Offsets: map[int32]int64{0: 1}}); err != nil {
			t.Fatal(err)
		}
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(dataKey(key))
			if err != nil {
				return err
			}
			// badger's Item says its meta byte; bit 1 is a value-log pointer.
			var meta int
			if _, err := fmt.Sscanf(item.String()[strings.LastIndex(item.String(), "meta=")+5:], "%x", &meta); err != nil {
				return err
			}
			if meta&2 != 0 {
				t.Errorf("a value of %d bytes is in badger's value log, whose failed sync badger does not return", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Values past one transaction together, and the largest a store that
	// is its own log keeps, are still written whole.
	largest := MaxLSMValue - 1 - 3 // version 1, timestamp 0, expiry 0: one byte each
	b := kv.Write{Offsets: map[int32]int64{0: 2}, Changes: []kv.Change{
		{Key: []byte("a"), Value: big[:700<<10], Version: 1}, {Key: []byte("b"), Value: big[:700<<10], Version: 1},
		{Key: []byte("c"), Value: bytes.Repeat([]byte("v"), largest), Version: 1}}}
	if err := s.ApplyAtomic(b); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if r, err := s.Get([]byte(k)); err != nil || !r.Found {
			t.Fatalf("%s: %+v %v", k, r, err)
		}
	}
}

// A value an Upsert takes (up to 1 MiB with its key) whose encoded form
// reaches badger's value threshold is refused, naming the limit, and nothing
// of its batch is written: in the value log its failed sync would be
// acknowledged and, after a restart, read as "store: corrupt value" for good
// (the outside tester's D1, with 1,048,570 bytes under a 1-byte key).
func TestDurableStoreRefusesAValueForTheValueLog(t *testing.T) {
	s, err := OpenBadger(DurableBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{1_048_565, 1_048_570, kv.MaxBatchBytes - 1} {
		c := kv.Change{Key: []byte("x"), Value: bytes.Repeat([]byte("B"), n), Version: 2, Timestamp: 1 << 57} // a hybrid-clock stamp: 9 bytes
		err := s.ApplyAtomic(kv.Write{Changes: []kv.Change{c}, Offsets: map[int32]int64{0: 5}})
		if !errors.Is(err, ErrValueTooLarge) || !errors.Is(err, kv.ErrInvalid) || !errors.Is(err, ErrNotWritten) {
			t.Fatalf("a value of %d bytes: %v, want ErrValueTooLarge (InvalidArgument, not written)", n, err)
		}
		if !strings.Contains(err.Error(), "1048576") {
			t.Errorf("the error does not name the limit: %v", err)
		}
		if r, _ := s.Get([]byte("x")); r.Found {
			t.Fatalf("a refused value of %d bytes was written", n)
		}
		if off, _ := s.Offsets(); off[0] != 0 {
			t.Fatalf("a refused batch moved the offsets to %v", off)
		}
	}
}

// An intent (a batch past one transaction) is written in chunks under the
// threshold: nothing of it reaches badger's value log, whose files stay at
// their header's size.
func TestDurableIntentStaysOutOfTheValueLog(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadger(DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	v := bytes.Repeat([]byte("v"), 900<<10)
	b := kv.Write{Offsets: map[int32]int64{0: 3}, Changes: []kv.Change{
		{Key: []byte("a"), Value: v, Version: 1}, {Key: []byte("b"), Value: v, Version: 1}, {Key: []byte("c"), Value: v, Version: 1}}}
	if err := s.ApplyAtomic(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, f := range logs {
		if fi, err := os.Stat(f); err == nil && fi.Size() > 64<<10 {
			t.Errorf("%s holds %d bytes: the intent went to badger's value log", filepath.Base(f), fi.Size())
		}
	}
	s, err = OpenBadger(DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"a", "b", "c"} {
		if r, err := s.Get([]byte(k)); err != nil || !r.Found || len(r.Value.Data) != len(v) {
			t.Fatalf("%s: found %v, %d bytes, %v", k, r.Found, len(r.Value.Data), err)
		}
	}
	if present(t, s, metaIntent) || present(t, s, intentChunkKey(0)) {
		t.Fatal("the intent is still there")
	}
}
