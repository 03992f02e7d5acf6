package local

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

func change(slot int32, key, value string, version uint64) kv.Record {
	return kv.Record{Kind: kv.KindChange, Slot: slot, Change: kv.Change{Key: []byte(key), Value: []byte(value), Version: version, Timestamp: version << 16}}
}

// committed is what the loop applies once a group committed (as
// core.Group.StoreWrite builds it).
func committed(g *wal.Group, offsets []int64) kv.Write {
	b := kv.Write{Offsets: map[int32]int64{}}
	for i, r := range g.Records {
		b.Offsets[r.Slot] = max(b.Offsets[r.Slot], offsets[i]+1)
		if r.Kind == kv.KindChange {
			b.Changes = append(b.Changes, r.Change)
		}
	}
	return b
}

func openDisk(t *testing.T, dir string) (*store.Badger, *Disk) {
	t.Helper()
	st, err := store.OpenBadger(store.DurableBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	return st, NewDisk(st)
}

// An append numbers records per slot after the store's offsets and writes
// the group before it returns; the loop's apply of it then writes nothing
// (a change behind the log's back shows it), and a restart numbers on.
func TestDiskAppendWritesTheGroupAndApplyIsANoOp(t *testing.T) {
	dir := t.TempDir()
	st, d := openDisk(t, dir)
	app, err := d.NewAppender(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g := &wal.Group{Records: []kv.Record{change(3, "a", "1", 1), change(5, "b", "1", 1), change(3, "c", "1", 1),
		{Kind: kv.KindMark, Slot: 9, Ingest: &kv.Source{Slot: 9, Offset: 77}}}}
	offsets, err := app.Append(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(offsets) != "[0 0 1 0]" {
		t.Fatalf("offsets %v", offsets)
	}
	if r, _ := st.Get([]byte("c")); string(r.Value.Data) != "1" {
		t.Fatal("the group is not in the store once appended")
	}
	if off, _ := st.Offsets(); off[3] != 2 || off[5] != 1 || off[9] != 1 {
		t.Fatalf("stored offsets %v", off)
	}
	if ing, _ := st.IngestOffsets(); ing[9] != 77 {
		t.Fatalf("stored ingest offsets %v", ing)
	}
	b := committed(g, offsets)
	b.Changes[0].Value = []byte("written twice") // were Apply to write, this would show
	if err := d.Store().Apply(b); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Get([]byte("a")); string(r.Value.Data) != "1" {
		t.Fatal("the loop's apply of an appended group wrote it again")
	}
	// A batch the appender did not write (a restore's) is written.
	if err := d.Store().Apply(kv.Write{Changes: []kv.Change{{Key: []byte("z"), Value: []byte("r"), Version: 1}}, Offsets: map[int32]int64{3: 3}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Get([]byte("z")); string(r.Value.Data) != "r" {
		t.Fatal("a batch the appender never wrote was skipped")
	}
	st.Close()

	st, d = openDisk(t, dir)
	defer st.Close()
	app, err = d.NewAppender(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	offsets, err = app.Append(context.Background(), &wal.Group{Records: []kv.Record{change(3, "a", "2", 2)}})
	if err != nil || offsets[0] != 3 {
		t.Fatalf("after a restart: offsets %v, %v", offsets, err)
	}
}

// A new appender fences the older one; a group with dead letters is refused
// for good (ingest needs Kafka).
func TestDiskFencingAndIngestRefusal(t *testing.T) {
	st, d := openDisk(t, t.TempDir())
	defer st.Close()
	old, _ := d.NewAppender(context.Background())
	if _, err := d.NewAppender(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := old.Append(context.Background(), &wal.Group{Records: []kv.Record{change(1, "a", "zombie", 1)}})
	if !errors.Is(err, wal.ErrNotCommitted) || !errors.Is(err, ErrFenced) {
		t.Fatalf("a fenced appender's append: %v", err)
	}
	if r, _ := st.Get([]byte("a")); r.Found {
		t.Fatal("a fenced appender wrote")
	}
	cur, _ := d.NewAppender(context.Background())
	_, err = cur.Append(context.Background(), &wal.Group{DeadLetters: []wal.DeadLetter{{Reason: "x"}}})
	if !errors.Is(err, wal.ErrNotCommitted) || !errors.Is(err, wal.ErrPermanent) {
		t.Fatalf("a group with dead letters: %v", err)
	}
}

// A group past one badger transaction (a 1 MiB request of tiny entries) is
// appended whole.
func TestDiskAppendsAGroupPastOneTransaction(t *testing.T) {
	st, d := openDisk(t, t.TempDir())
	defer st.Close()
	app, _ := d.NewAppender(context.Background())
	g := &wal.Group{}
	for i := range 50_000 {
		g.Records = append(g.Records, change(int32(i%4), fmt.Sprint("k", i), "v", 1))
	}
	offsets, err := app.Append(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Len(); n != 50_000 || offsets[len(offsets)-1] != 12_499 {
		t.Fatalf("%d keys stored, last offset %d", n, offsets[len(offsets)-1])
	}
}

// With no log, appends number records after the store's offsets at once.
func TestNoneNumbersAfterTheStore(t *testing.T) {
	st := store.NewMemory()
	st.Apply(kv.Write{Offsets: map[int32]int64{2: 10}})
	n := NewNone(st)
	old, _ := n.NewAppender(context.Background())
	app, _ := n.NewAppender(context.Background())
	offsets, err := app.Append(context.Background(), &wal.Group{Records: []kv.Record{change(2, "a", "1", 1), change(2, "b", "1", 1), change(4, "c", "1", 1)}})
	if err != nil || fmt.Sprint(offsets) != "[10 11 0]" {
		t.Fatalf("offsets %v %v", offsets, err)
	}
	offsets, _ = app.Append(context.Background(), &wal.Group{Records: []kv.Record{change(2, "a", "2", 2)}})
	if offsets[0] != 12 {
		t.Fatalf("second group's offset %d", offsets[0])
	}
	if _, err := old.Append(context.Background(), &wal.Group{Records: []kv.Record{change(2, "a", "x", 9)}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("a fenced appender: %v", err)
	}
}
