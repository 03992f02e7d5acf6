package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
)

func TestSnapshotRoundTrip(t *testing.T) {
	src, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var cs []kv.Change
	for i := 0; i < 5000; i++ {
		cs = append(cs, kv.Change{Key: fmt.Append(nil, "k", i), Value: bytes.Repeat([]byte{byte(i)}, 100), Version: uint64(i%7 + 1), Timestamp: uint64(i)})
	}
	later := uint64(time.Now().Add(time.Hour).UnixMilli())
	cs = append(cs, kv.Change{Key: []byte("ttl"), Value: []byte("v"), Version: 1, ExpiresAt: later})
	if err := src.Apply(kv.Write{Changes: cs, Offsets: map[int32]int64{1: 10, 2: 20}, Ingest: map[int32]int64{2: 5}, Clock: 99}); err != nil {
		t.Fatal(err)
	}
	// Overwrites and removals: only the newest live version goes in.
	if err := src.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("k1"), Value: []byte("new"), Version: 9}, {Key: []byte("k2"), Remove: true}}, Offsets: map[int32]int64{1: 12}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := src.Snapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Keys != 5000 || info.Offsets[1] != 12 || info.Offsets[2] != 20 || info.Ingest[2] != 5 || info.Clock != 99 {
		t.Fatalf("info %+v", info)
	}
	dst, err := OpenBadger(BadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.LoadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	want, got := dumpAll(t, src), dumpAll(t, dst)
	if want != got {
		t.Fatal("the loaded snapshot differs from its source")
	}
	offs, _ := dst.Offsets()
	if offs[1] != 12 {
		t.Fatalf("offsets after load: %v", offs)
	}
	// A write after the load is visible (the loaded versions do not shadow it).
	if err := dst.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("k1"), Value: []byte("after"), Version: 10}}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := dst.Get([]byte("k1")); string(r.Value.Data) != "after" {
		t.Fatalf("k1 = %q after a post-load write", r.Value.Data)
	}
}

func dumpAll(t *testing.T, s Store) string {
	var b bytes.Buffer
	if err := s.Each(func(k []byte, v kv.Value) bool {
		fmt.Fprintf(&b, "%s=%x/%d/%d/%d;", k, v.Data, v.Version, v.Timestamp, v.ExpiresAt)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
