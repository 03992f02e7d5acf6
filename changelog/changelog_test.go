package changelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
	"github.com/sluicedb/sluice/wal"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func setup(t testing.TB, slots int32) (topics.Names, []kgo.Opt, *kadm.Client) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	tp := topics.Names{Cluster: kafkatest.ClusterName(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := topics.EnsureAll(ctx, cl, tp, slots, 1)
	if err != nil || got != slots {
		t.Fatalf("EnsureAll = %d, %v", got, err)
	}
	return tp, opts, adm
}

func change(i int, slot int32) kv.Record {
	return kv.Record{Kind: kv.KindChange, Slot: slot, Epoch: 3,
		Change: kv.Change{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i)), Version: uint64(i + 1), Timestamp: uint64(1000 + i)}}
}

// group appends recs in one group and returns them with their offsets.
func group(t testing.TB, app *Appender, recs ...kv.Record) []wal.Positioned {
	t.Helper()
	offs, err := app.Append(context.Background(), &wal.Group{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]wal.Positioned, len(recs))
	for i := range recs {
		out[i] = wal.Positioned{Record: recs[i], Offset: offs[i]}
	}
	return out
}

func TestAppendThenReplayFromOffsets(t *testing.T) {
	tp, opts, _ := setup(t, 2)
	ctx := context.Background()
	app, err := NewAppender(ctx, AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var all []wal.Positioned
	for g := 0; g < 3; g++ {
		var recs []kv.Record
		for i := g * 10; i < g*10+10; i++ {
			recs = append(recs, change(i, int32(i%2)))
		}
		recs = append(recs, kv.Record{Kind: kv.KindChange, Slot: 0, Epoch: 3, Change: kv.Change{Key: []byte(fmt.Sprintf("key-%d", g)), Remove: true, Version: 9, Timestamp: 5000}})
		all = append(all, group(t, app, recs...)...)
	}
	// Replay everything, then only what came after the first group.
	var got []kv.Record
	reached, err := kafkaread.Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 0, 1: 0}, func(b kafkaread.Step) error {
		db, err := Decoded(b)
		for _, r := range db.Records {
			got = append(got, r.Record)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("replayed %d records, appended %d", len(got), len(all))
	}
	for _, r := range all {
		if reached[r.Slot] <= r.Offset {
			t.Fatalf("reached %v does not cover slot %d offset %d", reached, r.Slot, r.Offset)
		}
	}
	removes := 0
	for _, r := range got {
		if c := r.Change; c.Remove {
			removes++
			if c.Value != nil || c.Version != 9 || r.Epoch != 3 {
				t.Fatalf("bad tombstone %+v", r)
			}
		}
	}
	if removes != 3 {
		t.Fatalf("%d tombstones replayed, want 3", removes)
	}

	from := map[int32]int64{}
	for _, r := range all[:11] {
		from[r.Slot] = max(from[r.Slot], r.Offset+1)
	}
	n := 0
	again, err := kafkaread.Replay(ctx, opts, tp.Changelog(), from, func(b kafkaread.Step) error { n += len(b.Records); return nil })
	if err != nil || n != 22 {
		t.Fatalf("replay from %v gave %d records (%v), want 22", from, n, err)
	}
	if again[0] != reached[0] || again[1] != reached[1] {
		t.Fatalf("replays reached %v and %v", reached, again)
	}
	// Replaying from the end reads nothing and returns at once.
	n = 0
	if _, err := kafkaread.Replay(ctx, opts, tp.Changelog(), reached, func(b kafkaread.Step) error { n += len(b.Records); return nil }); err != nil || n != 0 {
		t.Fatalf("replay from the end: %d records, %v", n, err)
	}
}

// A new appender under the same transactional id fences the old one: the old
// one can no longer commit, and nothing it tried is replayed.
func TestNewAppenderFencesTheOld(t *testing.T) {
	tp, opts, _ := setup(t, 1)
	ctx := context.Background()
	old, err := NewAppender(ctx, AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(7)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	group(t, old, change(1, 0))
	next, err := NewAppender(ctx, AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(7)})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if _, err := old.Append(ctx, &wal.Group{Records: []kv.Record{change(2, 0)}}); !errors.Is(err, wal.ErrNotCommitted) {
		t.Fatalf("a fenced appender's Append = %v, want ErrNotCommitted", err)
	}
	group(t, next, change(3, 0))
	if keys := replayKeys(t, opts, tp.Changelog()); fmt.Sprint(keys) != "[key-1 key-3]" {
		t.Fatalf("replayed %v, want the fenced write absent", keys)
	}
}

// A group that fails (here: one record over the topic's limit) commits none of
// its records, and the appender goes on working.
func TestFailedGroupCommitsNothing(t *testing.T) {
	tp, opts, _ := setup(t, 1)
	ctx := context.Background()
	app, err := NewAppender(ctx, AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(1), DeliveryTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	huge := kv.Record{Kind: kv.KindChange, Change: kv.Change{Key: []byte("huge"), Value: bytes.Repeat([]byte("x"), topics.MaxRecordBytes+128<<10), Version: 1}}
	_, err = app.Append(ctx, &wal.Group{Records: []kv.Record{change(1, 0), huge}})
	if !errors.Is(err, wal.ErrNotCommitted) || !errors.Is(err, wal.ErrPermanent) {
		t.Fatalf("an oversized record: %v, want ErrNotCommitted and ErrPermanent", err)
	}
	group(t, app, change(2, 0))
	if keys := replayKeys(t, opts, tp.Changelog()); fmt.Sprint(keys) != "[key-2]" {
		t.Fatalf("replayed %v, want only key-2", keys)
	}
}

// replayKeys replays slot 0 of topic from the start and returns the keys.
func replayKeys(t *testing.T, opts []kgo.Opt, topic string) []string {
	t.Helper()
	var keys []string
	if _, err := kafkaread.Replay(context.Background(), opts, topic, map[int32]int64{0: 0}, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			keys = append(keys, string(r.Key))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}
