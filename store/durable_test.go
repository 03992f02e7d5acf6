package store

import (
	"bytes"
	"fmt"
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
		if err := s.ApplyAtomic(kv.Batch{Changes: []kv.Change{{Key: key, Value: big[:n], Version: 1}}, Offsets: map[int32]int64{0: 1}}); err != nil {
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
	// Values past one transaction together, and the largest an Upsert
	// takes, are still written whole.
	b := kv.Batch{Offsets: map[int32]int64{0: 2}, Changes: []kv.Change{
		{Key: []byte("a"), Value: big[:700<<10], Version: 1}, {Key: []byte("b"), Value: big[:700<<10], Version: 1},
		{Key: []byte("c"), Value: bytes.Repeat([]byte("v"), kv.MaxBatchBytes-1), Version: 1}}}
	if err := s.ApplyAtomic(b); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if r, err := s.Get([]byte(k)); err != nil || !r.Found {
			t.Fatalf("%s: %+v %v", k, r, err)
		}
	}
}
