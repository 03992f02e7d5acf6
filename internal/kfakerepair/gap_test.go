package kfakerepair

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A crash takes back the last record of a's log, which a reader had
// already read (a node's ingest position is past it). The next record
// written must not take its offset: the reader, asking from its position,
// reads it. A reader from the start reads the kept records and the new one,
// with the gap between them. A clean close and a second repair add no gap.
func TestNoOffsetACrashTookBackIsWrittenAgain(t *testing.T) {
	c, dir, ctx := startKfake(t, "a")
	w, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("a"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint("r", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	seg := filepath.Join(dir, "partitions", "a-0", "0.dat")
	waitForBatches(t, seg, 3)
	img := crashImage(t, dir)
	c.Close()
	seg = filepath.Join(img, "partitions", "a-0", "0.dat")
	cutLastBatch(t, seg) // lost cleanly, at a batch's start: nothing torn to see
	const readerAt = 3   // the reader had read r2, at offset 2

	rep, err := Repair(img, time.Now())
	if err != nil || len(rep.Skipped) != 1 {
		t.Fatalf("repair: %v (%v), want one gap left on a-0", rep.Lines(), err)
	}
	if err := Opening(img); err != nil { // as the node does before kfake starts
		t.Fatal(err)
	}
	c = restartKfake(t, img)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	w, err = kgo.NewClient(append(opts, kgo.DefaultProduceTopic("a"))...)
	if err != nil {
		t.Fatal(err)
	}
	res := w.ProduceSync(ctx, &kgo.Record{Key: []byte("new")})
	w.Close()
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	if at := res[0].Record.Offset; at < readerAt {
		t.Fatalf("the record written after the crash took offset %d, which the reader had passed", at)
	}
	if got := readFrom(t, opts, readerAt, 1); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("a reader at %d reads %v, want [new]", readerAt, got)
	}
	if got := readFrom(t, opts, 0, 3); !slices.Equal(got, []string{"r0", "r1", "new"}) {
		t.Fatalf("a reader from the start reads %v, want [r0 r1 new]", got)
	}
	c.Close() // clean: its snapshot matches its segments
	if err := Closed(img); err != nil {
		t.Fatal(err)
	}
	if rep, err := Repair(img, time.Now()); err != nil || len(rep.Lines()) != 0 {
		t.Fatalf("a repair after a clean close did %v (%v)", rep.Lines(), err)
	}
}

// readFrom reads n records of a's partition 0 from offset, 30 s at most.
func readFrom(t *testing.T, opts []kgo.Opt, offset int64, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"a": {0: kgo.NewOffset().At(offset)}}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)) })
	}
	return got
}

// waitForBatches waits (30 s at most) until segment seg holds n batches.
func waitForBatches(t *testing.T, seg string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(seg)
		got := 0
		walkBatches(data, func([]byte, *kmsg.RecordBatch) { got++ })
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s %s holds %d batches, want %d", seg, got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cutLastBatch cuts segment seg before its last batch.
func cutLastBatch(t *testing.T, seg string) {
	t.Helper()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	walkBatches(data, func(raw []byte, _ *kmsg.RecordBatch) { last += len(raw) })
	at := 0
	walkBatches(data, func(raw []byte, _ *kmsg.RecordBatch) {
		if at+len(raw) < last {
			at += len(raw)
		}
	})
	if err := os.Truncate(seg, int64(at)); err != nil {
		t.Fatal(err)
	}
}
