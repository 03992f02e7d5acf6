package kafkaread_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
	"github.com/sluicedb/sluice/wal"
)

// Replay must end on every shape of log: these tests build each shape, in
// process with kfake and against real Kafka where Kafka can make it, and
// replay it under a deadline (a replay that hangs fails by it).

// shapeBroker is where a shape is built: an in-process kfake or real Kafka.
type shapeBroker struct {
	opts []kgo.Opt
	adm  *kadm.Client
	name string // a unique topic name
}

func kfakeBroker(t *testing.T, dir string) (*kfake.Cluster, shapeBroker) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if dir != "" {
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, newShapeBroker(t, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "shape")
}

func kafkaBroker(t *testing.T) shapeBroker {
	t.Helper()
	return newShapeBroker(t, []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}, kafkatest.ClusterName(t)+".shape")
}

func newShapeBroker(t *testing.T, opts []kgo.Opt, name string) shapeBroker {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return shapeBroker{opts: opts, adm: kadm.NewClient(cl), name: name}
}

// topic creates b's topic with slots partitions and the given configs.
func (b shapeBroker) topic(t *testing.T, slots int32, configs map[string]string) string {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	name := topics.Names{Cluster: b.name}.Changelog()
	if _, err := b.adm.CreateTopic(context.Background(), slots, 1, cfg, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// commit appends one transaction of values to slot with the appender of
// transactional id txn (prefixed with the topic's unique name); a key
// "-k" removes k.
func (b shapeBroker) commit(t *testing.T, txn, topic string, slot int32, keys ...string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		var recs []kv.Record
		for _, k := range keys {
			c := kv.Change{Key: []byte(k), Value: []byte("v-" + k), Version: 1}
			if strings.HasPrefix(k, "-") {
				c = kv.Change{Key: []byte(k[1:]), Remove: true, Version: 2}
			}
			recs = append(recs, kv.Record{Kind: kv.KindChange, Slot: slot, Change: c})
		}
		app, err := changelog.NewAppender(context.Background(), changelog.AppenderConfig{Client: b.opts, Topics: topics.Names{Cluster: b.name}, TransactionalID: b.name + "." + txn})
		if err != nil {
			t.Fatal(err)
		}
		_, err = app.Append(context.Background(), &wal.Group{Records: recs})
		app.Close()
		// Not committed: franz-go's first-transaction abort (kafkatxn/commitwatch.go).
		// Like a partition, start again with a new producer.
		if err == nil || !errors.Is(err, wal.ErrNotCommitted) || attempt == 4 {
			if err != nil {
				t.Fatalf("commit, attempt %d: %v", attempt+1, err)
			}
			return
		}
	}
}

// inFlight begins a transaction of txn, produces keys to slot and leaves it
// open, as a producer killed mid-transaction does; the returned func closes
// the producer, aborting the transaction if abort.
func (b shapeBroker) inFlight(t *testing.T, txn, topic string, slot int32, keys ...string) func(abort bool) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.TransactionalID(b.name + "." + txn), kgo.TransactionTimeout(5 * time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, b.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		r := changelog.Encode(topic, kv.Record{Kind: kv.KindChange, Slot: slot, Change: kv.Change{Key: []byte(k), Value: []byte("in-flight"), Version: 1}})
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return func(abort bool) {
		if abort {
			if err := cl.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
				t.Error(err)
			}
		}
		cl.Close()
	}
}

// replayAll replays topic's slots from from under a deadline and returns the
// keys read per slot and the offsets reached.
func (b shapeBroker) replayAll(t *testing.T, topic string, from map[int32]int64) (map[int32][]string, map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := map[int32][]string{}
	reached, err := kafkaread.Replay(ctx, b.opts, topic, from, func(bt kafkaread.Step) error {
		for _, r := range bt.Records {
			keys[r.Partition] = append(keys[r.Partition], string(r.Key))
		}
		return nil
	}, kafkaread.StallAfter(2*time.Second), kafkaread.OnStall(func(s *kafkaread.Stall) {
		if s != nil {
			t.Logf("replay stalled: %s", s)
		}
	}))
	if err != nil {
		t.Fatalf("replay from %v did not finish: %v", from, err)
	}
	return keys, reached
}

// ends is topic's last stable offset per slot.
func (b shapeBroker) ends(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	ends, err := b.adm.ListCommittedOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// crashImage copies a running broker's data directory: what kill -9 would
// leave on disk (kfake writes through to the page cache, never buffers).
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	img := t.TempDir()
	if err := os.CopyFS(img, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return img
}

// crashAborted builds, in a kfake that is then "killed" and restarted on its
// disk, a slot whose committed records are followed by a transaction that was
// in flight at the crash: kfake aborts it at start without a marker and moves
// the last stable offset past it. It returns the restarted broker, the topic
// and the keys committed.
func crashAborted(t *testing.T) (shapeBroker, string, []string) {
	dir := t.TempDir()
	_, b := kfakeBroker(t, dir)
	topic := b.topic(t, 1, map[string]string{"cleanup.policy": "compact"})
	b.commit(t, "p1", topic, 0, "a", "b")
	b.commit(t, "p1", topic, 0, "c")
	closeInFlight := b.inFlight(t, "p1", topic, 0, "lost-1", "lost-2", "lost-3")
	img := crashImage(t, dir)
	closeInFlight(false)
	_, after := kfakeBroker(t, img)
	return after, topic, []string{"a", "b", "c"}
}

// kfake after a crash with a transaction in flight: the slot's tail is aborted
// batches with no marker after them. Replay ends at the last stable offset.
func TestReplayEndsAfterCrashWithTransactionInFlight(t *testing.T) {
	b, topic, committed := crashAborted(t)
	end := b.ends(t, topic)[0]
	keys, reached := b.replayAll(t, topic, map[int32]int64{0: 0})
	if !slices.Equal(keys[0], committed) || reached[0] != end {
		t.Fatalf("replayed %v up to %d; want %v up to the end %d", keys[0], reached[0], committed, end)
	}
}

// The owner that comes back writes under the same transactional id (same
// producer id, a new epoch) after the range kfake aborted without a marker. A
// read_committed reader that ends an aborted transaction only at a marker
// would drop every one of those commits; a replay from before the crash must
// return them all.
func TestReplayKeepsCommitsAfterACrashAbortedTransaction(t *testing.T) {
	b, topic, committed := crashAborted(t)
	b.commit(t, "p1", topic, 0, "d", "e")
	b.commit(t, "p1", topic, 0, "f")
	want := append(committed, "d", "e", "f")
	keys, reached := b.replayAll(t, topic, map[int32]int64{0: 0})
	if end := b.ends(t, topic)[0]; !slices.Equal(keys[0], want) || reached[0] != end {
		t.Fatalf("replayed %v up to %d; want %v up to the end %d", keys[0], reached[0], want, end)
	}
}

// A standby tailing the same log sees the same records and reaches the end.
func TestTailKeepsCommitsAfterACrashAbortedTransaction(t *testing.T) {
	b, topic, committed := crashAborted(t)
	b.commit(t, "p1", topic, 0, "d")
	want := append(committed, "d")
	end := b.ends(t, topic)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	var at int64
	err := kafkaread.Tail(ctx, b.opts, topic, map[int32]int64{0: 0}, func(bt kafkaread.Step) error {
		for _, r := range bt.Records {
			keys = append(keys, string(r.Key))
		}
		at = bt.Reached[0]
		if at >= end {
			cancel()
		}
		return nil
	})
	if at != end || !slices.Equal(keys, want) {
		t.Fatalf("tail read %v up to %d (%v); want %v up to the end %d", keys, at, err, want, end)
	}
}

// compactedTail builds a slot whose records after from were all compacted
// away — two aborted transactions — followed by a third producer's open
// transaction: the slot's last stable offset is past the gap, and no record
// lies in it (kfake removes every batch there; Kafka keeps each producer's
// last batch, emptied, and markers). compact(from, to) returns once the
// cleaner has removed every record in [from, to).
//
// Kafka never cleans at or past the last stable offset: the second
// transaction stays open while a first cleaning runs, and its abort (with the
// third one open) gives a second cleaning its work.
func compactedTail(t *testing.T, b shapeBroker, configs map[string]string, compact func(topic string, from, to int64)) {
	topic := b.topic(t, 1, configs)
	b.commit(t, "keep", topic, 0, "kept")
	from := b.settled(t, topic)[0]
	b.inFlight(t, "gone", topic, 0, "gone")(true)
	b.settled(t, topic)
	roll := func() { time.Sleep(200 * time.Millisecond) } // older than segment.ms: the next append rolls the segment
	roll()
	abortFirst := b.inFlight(t, "first", topic, 0, "aborted")
	roll()
	compact(topic, from, from+1) // the aborted record
	lso := b.ends(t, topic)[0]
	abortSecond := b.inFlight(t, "second", topic, 0, "open")
	defer abortSecond(true)
	roll()
	abortFirst(true)
	b.waitEnd(t, topic, 0, lso+1) // the first one's marker is written, the second is open
	compact(topic, from, lso+1)
	keys, reached := b.replayAll(t, topic, map[int32]int64{0: from})
	if len(keys[0]) != 0 || reached[0] != lso+1 {
		t.Fatalf("replayed %v up to %d; want nothing up to the last stable offset %d", keys[0], reached[0], lso+1)
	}
}

func TestReplayEndsAfterCompactedTailKfake(t *testing.T) {
	c, b := kfakeBroker(t, "")
	compactedTail(t, b, map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "0"}, func(topic string, from, to int64) {
		c.Compact()
		waitCompacted(t, b, topic, from, to)
	})
}

func TestReplayEndsAfterCompactedTailKafka(t *testing.T) {
	b := kafkaBroker(t)
	compactedTail(t, b, map[string]string{
		"cleanup.policy":            "compact",
		"delete.retention.ms":       "0",
		"segment.ms":                "100",
		"segment.bytes":             fmt.Sprint(1 << 20), // Kafka 4.1's least
		"min.cleanable.dirty.ratio": "0.01",
		"min.compaction.lag.ms":     "0",
	}, func(topic string, from, to int64) { waitCompacted(t, b, topic, from, to) })
}

// settled waits until no transaction is open on topic (Kafka writes a
// transaction's markers after EndTxn returns) and returns its ends.
func (b shapeBroker) settled(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lso := b.ends(t, topic)
		hwm, err := b.adm.ListEndOffsets(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		same := true
		hwm.Each(func(o kadm.ListedOffset) { same = same && lso[o.Partition] == o.Offset })
		if same {
			return lso
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last stable offsets %v never reached the ends", topic, lso)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitEnd waits until slot's last stable offset is want.
func (b shapeBroker) waitEnd(t *testing.T, topic string, slot int32, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.ends(t, topic)[slot] != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s slot %d: last stable offset %d, never %d", topic, slot, b.ends(t, topic)[slot], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCompacted waits until a read_uncommitted reader finds no record of
// the slot in [from, to), only markers (Kafka keeps a producer's last batch,
// if need be empty, and a marker until a cleaning after its records went).
func waitCompacted(t *testing.T, b shapeBroker, topic string, from, to int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
			kgo.KeepControlRecords()}, b.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		left, done := int64(-1), false // a record below to; reached to
		for !done && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				switch {
				case r.Offset >= to:
					done = true
				case !r.Attrs.IsControl() && left < 0:
					left = r.Offset
				}
			})
		}
		cancel()
		cl.Close()
		if left < 0 && done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot 0 of %s still holds a record at %d, below %d, after 3 minutes: not compacted", topic, left, to)
		}
		time.Sleep(time.Second)
	}
}

// An empty slot, a slot whose only record is a commit marker (its data
// deleted), and one whose only records are an aborted transaction and its
// marker: each replays to its end.
func emptyAndMarkerOnly(t *testing.T, b shapeBroker) {
	topic := b.topic(t, 3, map[string]string{"cleanup.policy": "delete"})
	b.commit(t, "m", topic, 1, "deleted")
	markerAt := b.settled(t, topic)[1] - 1
	if _, err := b.adm.DeleteRecords(context.Background(), kadm.Offsets{topic: {1: {Topic: topic, Partition: 1, At: markerAt}}}); err != nil {
		t.Fatal(err)
	}
	b.inFlight(t, "a", topic, 2, "aborted")(true)
	ends := b.settled(t, topic)
	if ends[0] != 0 || ends[2] != 2 {
		t.Fatalf("ends %v, want slot 0 empty and two offsets in slot 2", ends)
	}
	keys, reached := b.replayAll(t, topic, map[int32]int64{0: 0, 1: markerAt, 2: 0})
	if len(keys) != 0 || reached[0] != 0 || reached[1] != ends[1] || reached[2] != 2 {
		t.Fatalf("replayed %v up to %v; want nothing up to %v", keys, reached, ends)
	}
}

func TestReplayEndsOnEmptyAndMarkerOnlySlotsKfake(t *testing.T) {
	_, b := kfakeBroker(t, "")
	emptyAndMarkerOnly(t, b)
}

func TestReplayEndsOnEmptyAndMarkerOnlySlotsKafka(t *testing.T) {
	emptyAndMarkerOnly(t, kafkaBroker(t))
}

// Real Kafka's shape of a crash with a transaction in flight: the next owner's
// InitProducerID fences the old producer and writes an abort marker. The
// replay ends, and the next owner's commits under the same producer id are
// all read.
func TestReplayEndsAfterFencedTransactionKafka(t *testing.T) {
	b := kafkaBroker(t)
	topic := b.topic(t, 1, map[string]string{"cleanup.policy": "compact"})
	b.commit(t, "f", topic, 0, "a", "b")
	closeInFlight := b.inFlight(t, "f", topic, 0, "lost")
	defer closeInFlight(false)
	b.commit(t, "f", topic, 0, "c") // fences the in-flight one: its transaction is aborted
	keys, reached := b.replayAll(t, topic, map[int32]int64{0: 0})
	if end := b.ends(t, topic)[0]; !slices.Equal(keys[0], []string{"a", "b", "c"}) || reached[0] != end {
		t.Fatalf("replayed %v up to %d; want [a b c] up to the end %d", keys[0], reached[0], end)
	}
}

// A replay that makes no progress says why (slot, position, target) in a
// warning and to OnStall, keeps retrying, and ends once the slot moves again.
func TestReplayReportsAStallAndRecovers(t *testing.T) {
	c, b := kfakeBroker(t, "")
	topic := b.topic(t, 2, nil)
	b.commit(t, "s", topic, 0, "a")
	b.commit(t, "s", topic, 1, "b")
	var failing atomic.Bool
	failing.Store(true)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		f := req.(*kmsg.FetchRequest)
		if !failing.Load() || len(f.Topics) != 1 || len(f.Topics[0].Partitions) != 1 || f.Topics[0].Partitions[0].Partition != 1 {
			return nil, nil, false
		}
		resp := f.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = f.Topics[0].Topic, f.Topics[0].TopicID
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.ErrorCode = 1, kerr.KafkaStorageError.Code
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	var logged bytes.Buffer
	stalls := make(chan *kafkaread.Stall, 100)
	done := make(chan error, 1)
	var keys []string
	go func() {
		// Slot 1 alone: a fetch names every slot of its broker that has not
		// reached its target, and the fault is on slot 1's requests.
		_, err := kafkaread.Replay(context.Background(), b.opts, topic, map[int32]int64{1: 0}, func(bt kafkaread.Step) error {
			for _, r := range bt.Records {
				keys = append(keys, string(r.Key))
			}
			return nil
		}, kafkaread.WithLog(zerolog.New(&syncWriter{w: &logged})), kafkaread.StallAfter(300*time.Millisecond), kafkaread.OnStall(func(s *kafkaread.Stall) { stalls <- s }))
		done <- err
	}()
	var s *kafkaread.Stall
	select {
	case s = <-stalls:
	case <-time.After(30 * time.Second):
		t.Fatal("no stall reported")
	}
	if end := b.ends(t, topic)[1]; s == nil || s.Slot != 1 || s.Position != 0 || s.Target != end || !strings.Contains(s.Reason, "KAFKA_STORAGE_ERROR") {
		t.Fatalf("stall %+v, want slot 1 at 0 of %d failing with KAFKA_STORAGE_ERROR", s, end)
	}
	failing.Store(false)
	select {
	case err := <-done:
		if err != nil || !slices.Equal(keys, []string{"b"}) {
			t.Fatalf("replay after the stall: %v, %v", keys, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replay did not end once the slot could be fetched")
	}
	var last *kafkaread.Stall
	for len(stalls) > 0 {
		last = <-stalls
	}
	if last != nil {
		t.Fatalf("last stall report %v, want nil once the replay moved on", last)
	}
	if line := logged.String(); !strings.Contains(line, `"slot":1`) || !strings.Contains(line, `"position":0`) || !strings.Contains(line, fmt.Sprintf(`"target":%d`, b.ends(t, topic)[1])) || !strings.Contains(line, `"level":"warn"`) {
		t.Fatalf("warning %q does not name slot, position and target", line)
	}
}

// syncWriter lets the replay's goroutine log into a buffer the test reads.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// A tail's Lag counts what is left up to the log's committed end as the tail
// found it, and is 0 from the step that reaches it on (a standby serves from
// then on). A tail that begins at the end says so at once, in a step without
// records, before any write.
func tailCatchesUp(t *testing.T, b shapeBroker) {
	topic := b.topic(t, 2, map[string]string{"cleanup.policy": "delete"})
	for i := range 3 {
		b.commit(t, "w", topic, 0, fmt.Sprint("a", i), fmt.Sprint("b", i))
	}
	ends := b.settled(t, topic)
	type seen struct {
		reached, lag int64
		records      int
	}
	tail := func(from map[int32]int64, until func(s seen) bool) []seen {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var steps []seen
		err := kafkaread.Tail(ctx, b.opts, topic, from, func(bt kafkaread.Step) error {
			s := seen{reached: from[0], lag: bt.Lag, records: len(bt.Records)}
			if r, ok := bt.Reached[0]; ok {
				s.reached, from[0] = r, r
			}
			steps = append(steps, s)
			if until(s) {
				cancel()
			}
			return nil
		}, kafkaread.FetchMaxBytes(1))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("tail ended with %v after %v", err, steps)
		}
		return steps
	}

	steps := tail(map[int32]int64{0: 0, 1: 0}, func(s seen) bool { return s.reached >= ends[0] })
	if len(steps) < 2 {
		t.Fatalf("steps %v: want the records in more than one step", steps)
	}
	for _, s := range steps {
		if want := ends[0] - s.reached; s.lag != want {
			t.Fatalf("steps %v: lag %d at %d, want %d (the end is %d)", steps, s.lag, s.reached, want, ends[0])
		}
	}

	written := false
	steps = tail(map[int32]int64{0: ends[0], 1: ends[1]}, func(s seen) bool {
		if !written {
			b.commit(t, "w", topic, 0, "later") // the tail's fetcher goes on meanwhile
			written = true
		}
		return s.records > 0
	})
	if first := steps[0]; first.records != 0 || first.lag != 0 || first.reached != ends[0] {
		t.Fatalf("steps %v: a tail from the end begins with %+v, want no records and lag 0 at %d", steps, first, ends[0])
	}
	if last := steps[len(steps)-1]; last.lag != 0 {
		t.Fatalf("steps %v: a write after the tail caught up gives lag %d, want 0", steps, last.lag)
	}
}

func TestTailLagCountsToTheEndItFoundKfake(t *testing.T) {
	_, b := kfakeBroker(t, "")
	tailCatchesUp(t, b)
}

func TestTailLagCountsToTheEndItFoundKafka(t *testing.T) {
	tailCatchesUp(t, kafkaBroker(t))
}
