package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// A memory store's snapshot is in the Badger store's format: it loads into a
// memory store and into a Badger store with the same state, and back.
func TestMemorySnapshotRoundTripsThroughBadger(t *testing.T) {
	src := NewMemory()
	now := uint64(time.Now().UnixMilli()) << 16
	var cs []kv.Change
	for i := range 3000 {
		cs = append(cs, kv.Change{Key: fmt.Append(nil, "k", i), Value: fmt.Append(nil, "v", i), Version: uint64(i%5 + 1), Timestamp: now})
	}
	cs = append(cs, kv.Change{Key: []byte("gone"), Remove: true, Version: 4, Timestamp: now})
	if err := src.Apply(kv.Write{Changes: cs, Offsets: map[int32]int64{1: 10, 2: 20}, Ingest: map[int32]int64{2: 5}, Clock: now}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := src.Snapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Keys != 3000 || info.Offsets[2] != 20 || info.Ingest[2] != 5 || info.Clock != now {
		t.Fatalf("info %+v", info)
	}
	raw := buf.Bytes()

	mem := NewMemory()
	if err := mem.LoadSnapshot(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	bdg, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer bdg.Close()
	if err := bdg.LoadSnapshot(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	want := dumpAll(t, src)
	for name, st := range map[string]Store{"memory": mem, "badger": bdg} {
		if got := dumpAll(t, st); got != want {
			t.Fatalf("%s: the loaded snapshot differs from its source", name)
		}
		if r, _ := st.Get([]byte("gone")); r.Found || r.Value.Version != 4 {
			t.Fatalf("%s: the tombstone's version was lost: %+v", name, r)
		}
		if c, _ := st.Clock(); c != now {
			t.Fatalf("%s: clock %d", name, c)
		}
		if off, _ := st.Offsets(); off[1] != 10 || off[2] != 20 {
			t.Fatalf("%s: offsets %v", name, off)
		}
	}
	// A write after the load is visible in Badger (the loaded versions do not shadow it).
	if err := bdg.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("k1"), Value: []byte("after"), Version: 9}}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := bdg.Get([]byte("k1")); string(r.Value.Data) != "after" {
		t.Fatalf("k1 = %q after a post-load write", r.Value.Data)
	}
	// And back: Badger's snapshot loads into a memory store.
	buf.Reset()
	if _, err := bdg.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	back := NewMemory()
	if err := back.LoadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpAll(t, back), dumpAll(t, bdg); got != want {
		t.Fatal("a Badger snapshot loaded into memory differs")
	}
}

func TestMemoryLoadRefusesACorruptStream(t *testing.T) {
	src := NewMemory()
	src.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("a"), Value: []byte("1"), Version: 1}}})
	var buf bytes.Buffer
	if _, err := src.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if err := NewMemory().LoadSnapshot(bytes.NewReader(raw[:len(raw)-2])); err == nil {
		t.Fatal("a cut stream loaded")
	}
	huge := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, raw[8:]...)
	if err := NewMemory().LoadSnapshot(bytes.NewReader(huge)); err == nil {
		t.Fatal("a list length of 2^63 loaded")
	}
}
