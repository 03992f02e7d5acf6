package partition

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

// fakeIngest serves records per slot from the offsets it is asked for, as a
// Kafka consumer would, then waits.
func fakeIngest(recs map[int32][]IngestRecord) func(context.Context, map[int32]int64, func([]IngestRecord) error) error {
	return func(ctx context.Context, from map[int32]int64, deliver func([]IngestRecord) error) error {
		for slot, off := range from {
			var batch []IngestRecord
			for _, r := range recs[slot] {
				if r.Offset >= off {
					batch = append(batch, r)
				}
			}
			if len(batch) > 0 {
				if err := deliver(batch); err != nil {
					return err
				}
			}
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

// ingestLog builds n records per key over keys, each in its key's slot.
func ingestLog(keys, n int, slots int32) (map[int32][]IngestRecord, map[string]int) {
	recs := make(map[int32][]IngestRecord)
	counts := make(map[string]int)
	for i := 0; i < keys*n; i++ {
		k := fmt.Sprint("k", i%keys)
		counts[k]++
		slot := keyspace.Slot([]byte(k), slots)
		recs[slot] = append(recs[slot], IngestRecord{Slot: slot, Offset: int64(len(recs[slot])), Key: []byte(k), Value: []byte(fmt.Sprint(counts[k]))})
	}
	return recs, counts
}

func checkCounts(t *testing.T, p *Partition, counts map[string]int) {
	t.Helper()
	waitFor(t, func() bool {
		for k, n := range counts {
			v, found, err := p.Get(context.Background(), []byte(k))
			if err != nil || !found || string(v.Data) != fmt.Sprint(n) {
				return false
			}
			if v.Version != uint64(n) {
				t.Fatalf("%s: version %d after %d records", k, v.Version, n)
			}
		}
		return true
	})
}

// Ingest records apply once; after a restart on the same store and log the
// consumer resumes from the stored mark and applies nothing twice.
func TestIngestAppliesOnceAcrossRestart(t *testing.T) {
	l := newFakeLog()
	recs, counts := ingestLog(20, 5, 4)
	cfg := testConfig(l, store.NewMemory())
	cfg.Ingest = fakeIngest(recs)
	p := Start(cfg)
	waitServing(t, p)
	checkCounts(t, p, counts)
	p.Close()

	for _, st := range []store.Store{store.NewMemory(), reopened(t, cfg.Store)} {
		cfg := testConfig(l, st)
		cfg.Ingest = fakeIngest(recs) // offers everything again from what it is asked
		p := startServing(t, cfg)
		checkCounts(t, p, counts)
		p.Close()
	}
}

// A failed append re-syncs, and the consumer starts again from the committed
// mark: the records of the failed group come again and apply once.
func TestIngestAfterAppendFailure(t *testing.T) {
	l := newFakeLog()
	l.gate = make(chan appendCall)
	recs, counts := ingestLog(10, 3, 4)
	cfg := testConfig(l, store.NewMemory())
	cfg.Ingest = fakeIngest(recs)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // registered first: runs after the partition's Close
	p := startServing(t, cfg)
	(<-l.gate).answer <- appendAnswer{err: errBoom} // the first group fails, nothing committed
	go func() {
		for {
			select {
			case call := <-l.gate:
				call.answer <- appendAnswer{commit: true}
			case <-stop:
				return
			}
		}
	}()
	checkCounts(t, p, counts)
}

func TestIngestBadRecordsAreDeadLetters(t *testing.T) {
	l := newFakeLog()
	slot := keyspace.Slot([]byte("good"), 4)
	bad := errors.New("unreadable header")
	recs := map[int32][]IngestRecord{slot: {
		{Slot: slot, Offset: 0, Key: nil, Value: []byte("v")},
		{Slot: slot, Offset: 1, Key: []byte("good"), Value: []byte("v"), Err: fmt.Errorf("%w", bad)},
		{Slot: slot, Offset: 2, Key: []byte("good"), Value: []byte("ok"), Headers: []kgo.RecordHeader{{Key: "x", Value: []byte("y")}}},
	}}
	cfg := testConfig(l, store.NewMemory())
	cfg.DLQTopic, cfg.Ingest = "t.ingest.dlq", fakeIngest(recs)
	p := startServing(t, cfg)
	waitFor(t, func() bool {
		v, found, err := p.Get(context.Background(), []byte("good"))
		return err == nil && found && string(v.Data) == "ok" && v.Version == 1 // the bad one did not apply
	})
	// Both bad records are in the DLQ, in the same log as the changes, with
	// their reason and source.
	l.mu.Lock()
	defer l.mu.Unlock()
	dl := l.slots[0]
	var reasons []string
	for _, r := range dl {
		if r.Topic != cfg.DLQTopic {
			continue
		}
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		reasons = append(reasons, h[HeaderSourceOffset]+":"+h[HeaderError])
	}
	if len(reasons) != 2 || reasons[0] != "0:invalid argument: empty key" || reasons[1] != "1:unreadable header" {
		t.Fatalf("dead letters: %q", reasons)
	}
}

// The pipeline's stages apply identically to gRPC writes and ingest records:
// a drop skips the write, a rejection fails the request (gRPC) or sends the
// record to the DLQ (ingest), a transformation changes what is stored.
func TestStagesApplyToGRPCAndIngest(t *testing.T) {
	stages, err := pipeline.ParseConfig([]byte(`
pipeline:
  - filter: {prefixes: ["tmp/"], action: drop}
  - filter: {field: status, equals: banned, action: reject}
  - sanitize: {fields: [password]}
  - enrich: {fields: {via: source}}
`))
	if err != nil {
		t.Fatal(err)
	}
	l := newFakeLog()
	slot := keyspace.Slot([]byte("in-1"), 4)
	keyIn := func(prefix string) string { // a key of the same slot as in-1
		for i := 0; ; i++ {
			k := fmt.Sprint(prefix, i)
			if keyspace.Slot([]byte(k), 4) == slot {
				return k
			}
		}
	}
	tmp, banned := keyIn("tmp/"), keyIn("ban-")
	recs := map[int32][]IngestRecord{slot: {
		{Slot: slot, Offset: 0, Key: []byte("in-1"), Value: []byte(`{"name":"a","password":"p"}`)},
		{Slot: slot, Offset: 1, Key: []byte(tmp), Value: []byte(`{"x":1}`)},
		{Slot: slot, Offset: 2, Key: []byte(banned), Value: []byte(`{"status":"banned"}`)},
	}}
	cfg := testConfig(l, store.NewMemory())
	cfg.Stages, cfg.DLQTopic, cfg.Ingest = stages, "t.dlq", fakeIngest(recs)
	p := startServing(t, cfg)
	ctx := context.Background()

	res, err := p.Upsert(ctx, entries("g-1", `{"name":"b","password":"q"}`, "tmp/g", `{"y":2}`))
	if err != nil || len(res) != 2 || res[1].Offset != -1 {
		t.Fatalf("upsert with a dropped entry: %+v %v", res, err)
	}
	if res, err := p.Upsert(ctx, entries("tmp/only", "{}")); err != nil || res[0].Offset != -1 {
		t.Fatalf("an upsert whose every entry is dropped: %+v %v", res, err)
	}
	if _, err := p.Upsert(ctx, entries("g-2", "{}", "g-3", `{"status":"banned"}`)); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("a rejected entry: %v", err)
	}
	if _, found, _ := p.Get(ctx, []byte("g-2")); found {
		t.Fatal("a request with a rejected entry was partly applied")
	}
	waitFor(t, func() bool { _, found, _ := p.Get(ctx, []byte("in-1")); return found })
	for key, want := range map[string]string{"g-1": `{"name":"b","via":"grpc"}`, "in-1": `{"name":"a","via":"ingest"}`} {
		if v, _, _ := p.Get(ctx, []byte(key)); string(v.Data) != want {
			t.Errorf("%s = %s, want %s", key, v.Data, want)
		}
	}
	for _, key := range []string{"tmp/g", tmp, banned} {
		if _, found, _ := p.Get(ctx, []byte(key)); found {
			t.Errorf("%s was stored", key)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dead := 0
	for _, r := range l.slots[0] {
		if r.Topic == "t.dlq" && string(r.Key) == banned {
			dead++
		}
	}
	if dead != 1 {
		t.Fatalf("the rejected ingest record is in the DLQ %d times, want 1", dead)
	}
}
