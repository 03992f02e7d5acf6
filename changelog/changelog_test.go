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
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func setup(t testing.TB, slots int32) (Topics, []kgo.Opt, *kadm.Client) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	tp := Topics{Cluster: kafkatest.ClusterName(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := EnsureTopics(ctx, cl, tp, slots, 1)
	if err != nil || got != slots {
		t.Fatalf("EnsureTopics = %d, %v", got, err)
	}
	return tp, opts, adm
}

func change(i int, slot int32) Change {
	return Change{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i)), Version: uint64(i + 1), Timestamp: uint64(1000 + i), Epoch: 3}
}

func TestEnsureTopicsIsIdempotentAndKeepsSlotCount(t *testing.T) {
	tp, opts, adm := setup(t, 4)
	ctx := context.Background()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := EnsureTopics(ctx, cl, tp, 16, 1) // the existing topic wins
	if err != nil || got != 4 {
		t.Fatalf("second EnsureTopics = %d, %v", got, err)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, tp.Changelog())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(tp.Changelog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cleanup.policy": "compact", "max.message.bytes": fmt.Sprint(MaxRecordBytes + 64<<10)}
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("%s = %s, want %s", c.Key, c.MaybeValue(), w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("configs missing: %v", want)
	}
}

func TestAppendThenReplayFromOffsets(t *testing.T) {
	tp, opts, _ := setup(t, 2)
	ctx := context.Background()
	app, err := NewAppender(ctx, AppenderConfig{Client: opts, TransactionalID: tp.TransactionalID(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var all []*kgo.Record
	for g := 0; g < 3; g++ {
		var recs []*kgo.Record
		for i := g * 10; i < g*10+10; i++ {
			recs = append(recs, change(i, int32(i%2)).Record(tp.Changelog(), int32(i%2)))
		}
		recs = append(recs, Change{Key: []byte(fmt.Sprintf("key-%d", g)), Remove: true, Version: 9, Timestamp: 5000, Epoch: 3}.Record(tp.Changelog(), 0))
		if err := app.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	// Replay everything, then only what came after the first group.
	var got []Change
	reached, err := Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 0, 1: 0}, func(b Batch) error {
		for _, r := range b.Records {
			c, err := Decode(r)
			if err != nil {
				return err
			}
			got = append(got, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("replayed %d records, appended %d", len(got), len(all))
	}
	for _, r := range all {
		if reached[r.Partition] <= r.Offset {
			t.Fatalf("reached %v does not cover slot %d offset %d", reached, r.Partition, r.Offset)
		}
	}
	removes := 0
	for _, c := range got {
		if c.Remove {
			removes++
			if c.Value != nil || c.Version != 9 || c.Epoch != 3 {
				t.Fatalf("bad tombstone %+v", c)
			}
		}
	}
	if removes != 3 {
		t.Fatalf("%d tombstones replayed, want 3", removes)
	}

	from := map[int32]int64{}
	for _, r := range all[:11] {
		from[r.Partition] = max(from[r.Partition], r.Offset+1)
	}
	n := 0
	again, err := Replay(ctx, opts, tp.Changelog(), from, func(b Batch) error { n += len(b.Records); return nil })
	if err != nil || n != 22 {
		t.Fatalf("replay from %v gave %d records (%v), want 22", from, n, err)
	}
	if again[0] != reached[0] || again[1] != reached[1] {
		t.Fatalf("replays reached %v and %v", reached, again)
	}
	// Replaying from the end reads nothing and returns at once.
	n = 0
	if _, err := Replay(ctx, opts, tp.Changelog(), reached, func(b Batch) error { n += len(b.Records); return nil }); err != nil || n != 0 {
		t.Fatalf("replay from the end: %d records, %v", n, err)
	}
}

// A new appender under the same transactional id fences the old one: the old
// one can no longer commit, and nothing it tried is replayed.
func TestNewAppenderFencesTheOld(t *testing.T) {
	tp, opts, _ := setup(t, 1)
	ctx := context.Background()
	old, err := NewAppender(ctx, AppenderConfig{Client: opts, TransactionalID: tp.TransactionalID(7)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Append(ctx, []*kgo.Record{change(1, 0).Record(tp.Changelog(), 0)}); err != nil {
		t.Fatal(err)
	}
	next, err := NewAppender(ctx, AppenderConfig{Client: opts, TransactionalID: tp.TransactionalID(7)})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if err := old.Append(ctx, []*kgo.Record{change(2, 0).Record(tp.Changelog(), 0)}); !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("a fenced appender's Append = %v, want ErrNotCommitted", err)
	}
	if err := next.Append(ctx, []*kgo.Record{change(3, 0).Record(tp.Changelog(), 0)}); err != nil {
		t.Fatal(err)
	}
	if keys := replayKeys(t, opts, tp.Changelog()); fmt.Sprint(keys) != "[key-1 key-3]" {
		t.Fatalf("replayed %v, want the fenced write absent", keys)
	}
}

// A group that fails (here: one record over the topic's limit) commits none of
// its records, and the appender goes on working.
func TestFailedGroupCommitsNothing(t *testing.T) {
	tp, opts, _ := setup(t, 1)
	ctx := context.Background()
	app, err := NewAppender(ctx, AppenderConfig{Client: opts, TransactionalID: tp.TransactionalID(1), DeliveryTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	huge := Change{Key: []byte("huge"), Value: bytes.Repeat([]byte("x"), MaxRecordBytes+128<<10), Version: 1}
	err = app.Append(ctx, []*kgo.Record{change(1, 0).Record(tp.Changelog(), 0), huge.Record(tp.Changelog(), 0)})
	if !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("an oversized record: %v, want ErrNotCommitted", err)
	}
	if err := app.Append(ctx, []*kgo.Record{change(2, 0).Record(tp.Changelog(), 0)}); err != nil {
		t.Fatalf("appender unusable after a failed group: %v", err)
	}
	if keys := replayKeys(t, opts, tp.Changelog()); fmt.Sprint(keys) != "[key-2]" {
		t.Fatalf("replayed %v, want only key-2", keys)
	}
}

// replayKeys replays slot 0 of topic from the start and returns the keys.
func replayKeys(t *testing.T, opts []kgo.Opt, topic string) []string {
	t.Helper()
	var keys []string
	if _, err := Replay(context.Background(), opts, topic, map[int32]int64{0: 0}, func(b Batch) error {
		for _, r := range b.Records {
			keys = append(keys, string(r.Key))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// Replay never starts later than asked: a log deleted past the offset is an error.
func TestReplayRefusesOffsetGone(t *testing.T) {
	tp, opts, adm := setup(t, 1)
	ctx := context.Background()
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(tp.Ingest()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{tp.Ingest(): {0: {Topic: tp.Ingest(), Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	_, err = Replay(ctx, opts, tp.Ingest(), map[int32]int64{0: 1}, func(Batch) error { return nil })
	var gone *OffsetGoneError
	if !errors.As(err, &gone) || gone.Needed != 1 || gone.LogStart != 3 {
		t.Fatalf("err = %v, want OffsetGoneError needing 1 with log start 3", err)
	}
}
