package local

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
)

// The outside tester's D1: a value of 1,048,570 bytes under a 1-byte key
// (within an Upsert's 1 MiB) is refused with InvalidArgument naming the
// limit, before it joins a group: the partition does not re-sync (which
// would fail every other request of the group), the key keeps its value,
// and a value at the limit is written and read back.
func TestDiskRefusesAValueBadgerWouldPutInItsValueLog(t *testing.T) {
	st, err := store.OpenBadger(store.DurableBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var appenders atomic.Int64
	d := NewDisk(st)
	p := partition.Start(partition.Config{Config: core.Config{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Slots: 4, Epoch: 1, Stages: DiskStages(nil)},
		Store: d.Store(), WAL: countingLog{d, &appenders}, Log: zerolog.Nop()})
	t.Cleanup(func() { p.Close() })
	waitUntil(t, "the partition serves", p.Serving)
	ctx := context.Background()
	x := []byte("x")
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: x, Value: []byte("A")}}); err != nil {
		t.Fatal(err)
	}
	_, err = p.Upsert(ctx, []kv.Entry{{Key: x, Value: bytes.Repeat([]byte("B"), 1_048_570)}})
	if !errors.Is(err, kv.ErrInvalid) || !strings.Contains(err.Error(), strconv.Itoa(MaxDiskValue)) {
		t.Fatalf("a value of 1,048,570 bytes: %v, want kv.ErrInvalid naming the limit %d", err, MaxDiskValue)
	}
	if n := appenders.Load(); n != 1 {
		t.Fatalf("the refused value made the partition re-sync (%d appenders): every request of its group failed with it", n)
	}
	if r, err := p.Get(ctx, x); err != nil || string(r.Value.Data) != "A" {
		t.Fatalf("x after the refusal: %q %v", r.Value.Data, err)
	}
	big := bytes.Repeat([]byte("C"), MaxDiskValue)
	if _, err := p.Upsert(ctx, []kv.Entry{{Key: x, Value: big}}); err != nil {
		t.Fatalf("a value at the limit: %v", err)
	}
	if r, err := p.Get(ctx, x); err != nil || !bytes.Equal(r.Value.Data, big) {
		t.Fatalf("x: %d bytes, %v", len(r.Value.Data), err)
	}
}
