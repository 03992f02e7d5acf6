package store

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// scanned collects a Scan's keys (and values, which are the key upper-cased).
func scanned(t *testing.T, s Store, start, end string, stopAfter int) []string {
	t.Helper()
	var got []string
	err := s.Scan([]byte(start), []byte(end), func(k []byte, v kv.Value) bool {
		if string(v.Data) != strings.ToUpper(string(k)) || v.Version == 0 {
			t.Fatalf("Scan handed %q = %q version %d", k, v.Data, v.Version)
		}
		got = append(got, string(k))
		return stopAfter == 0 || len(got) < stopAfter
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A scan returns the live keys of [start, end) in key order: removed and
// expired keys (which the store keeps for their versions) are skipped, and
// the metadata under the store's reserved prefix never shows.
func TestScanRange(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reopen func() Store) {
		past := uint64(time.Now().Add(-time.Minute).UnixMilli())
		later := uint64(time.Now().Add(time.Hour).UnixMilli())
		var cs []kv.Change
		for _, k := range []string{"d", "a", "ba", "b", "c", "bz", "e"} {
			cs = append(cs, kv.Change{Key: []byte(k), Value: []byte(strings.ToUpper(k)), Version: 1, Timestamp: 7})
		}
		cs = append(cs,
			kv.Change{Key: []byte("bb"), Remove: true, Version: 2, Timestamp: uint64(time.Now().UnixMilli()) << 16},
			kv.Change{Key: []byte("bc"), Value: []byte("BC"), Version: 1, ExpiresAt: past},
			kv.Change{Key: []byte("bd"), Value: []byte("BD"), Version: 1, ExpiresAt: later},
		)
		if err := s.Apply(kv.Write{Changes: cs, Offsets: map[int32]int64{1: 9}, Clock: 7}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		for _, tc := range []struct {
			start, end string
			stop       int
			want       string
		}{
			{"", "", 0, "a b ba bd bz c d e"},
			{"b", "c", 0, "b ba bd bz"},
			{"b", "", 0, "b ba bd bz c d e"},
			{"", "b", 0, "a"},
			{"bb", "bz", 0, "bd"},
			{"b", "c", 2, "b ba"},
			{"f", "", 0, ""},
			{"c", "c", 0, ""},
		} {
			if got := strings.Join(scanned(t, s, tc.start, tc.end, tc.stop), " "); got != tc.want {
				t.Errorf("Scan [%q, %q) stop %d = %q, want %q", tc.start, tc.end, tc.stop, got, tc.want)
			}
		}
	})
}

// A scan reads at one point: writes while it runs (here, from inside its
// own callback) do not show in it.
func TestScanReadsAtOnePoint(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ func() Store) {
		put := func(k string, version uint64) {
			if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: []byte(k), Value: []byte(strings.ToUpper(k)), Version: version}}}); err != nil {
				t.Fatal(err)
			}
		}
		put("k1", 1)
		put("k3", 1)
		var got []string
		err := s.Scan(nil, nil, func(k []byte, v kv.Value) bool {
			got = append(got, fmt.Sprintf("%s@%d", k, v.Version))
			if len(got) == 1 {
				put("k2", 1) // inserted between two keys the scan has yet to pass
				put("k3", 2)
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != "k1@1 k3@1" {
			t.Fatalf("scan saw writes made after it started: %v", got)
		}
	})
}

// A scan holds no copy of the values it has not handed out: a scan of a
// store of large values that stops after one entry allocates a small part
// of one value's worth per key, in both stores (the memory store copied
// every value of the range before it handed out the first).
func TestScanCopiesNoValueItDoesNotHandOut(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ func() Store) {
		value := make([]byte, 512<<10)
		for i := range 64 {
			if err := s.Apply(kv.Write{Changes: []kv.Change{{Key: fmt.Appendf(nil, "big-%02d", i), Value: value, Version: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n := 0
		if err := s.Scan([]byte("big-"), nil, func([]byte, kv.Value) bool { n++; return false }); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; n != 1 || got > 4*uint64(len(value)) {
			t.Fatalf("a scan stopped after %d entries allocated %d KiB, over 4 values' worth (%d KiB), of 64 values of %d KiB", n, got>>10, 4*len(value)>>10, len(value)>>10)
		}
	})
}
