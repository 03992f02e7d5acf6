package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/ingest"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// gatedStore holds every Apply of changes or ingest offsets until the test
// opens its gate: the partition has committed the records to its log but not
// applied them to its store. (A restore's stamp of when the store was in sync
// goes through.)
type gatedStore struct {
	store.Store
	gate chan struct{}
}

func (s *gatedStore) Apply(b kv.Write) error {
	if len(b.Changes) > 0 || len(b.Ingest) > 0 || len(b.Offsets) > 0 {
		<-s.gate
	}
	return s.Store.Apply(b)
}

// memLog is a log that commits every group at once.
type memLog struct {
	mu   sync.Mutex
	next map[int32]int64
}

func (l *memLog) Append(_ context.Context, g *wal.Group) ([]int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	offs := make([]int64, len(g.Records))
	for i, r := range g.Records {
		offs[i] = l.next[r.Slot]
		l.next[r.Slot]++
	}
	return offs, nil
}

func (*memLog) Close() {}

// memLog is its own log's only appender; nothing follows the store.
func (l *memLog) NewAppender(context.Context) (wal.Appender, error) { return l, nil }
func (*memLog) Replay(_ context.Context, from map[int32]int64, _ func(wal.Replayed) error, _ func(string)) (map[int32]int64, error) {
	return from, nil
}
func (*memLog) Retention() time.Duration { return 0 }

// consumer is the partition's ingest source: the topic's slots.
type consumer struct{ cfg ingest.Config }

func (c consumer) Consume(ctx context.Context, from map[int32]int64, deliver func([]kv.IngestRecord) error) error {
	return ingest.Consume(ctx, c.cfg, from, deliver)
}

// The ingest lag to applied state counts a record until a linearizable read
// returns it: with the store's writes held, the consumer has fetched every
// record (the fetched lag, all the old metric counted, is 0) but the applied
// lag still counts them all; once writes go through, every slot whose
// applied lag is 0 has its last record readable.
func TestAppliedLagIsZeroOnlyOnceReadable(t *testing.T) {
	const slots, records = 4, 200
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.ClusterName(t) + ".ingest"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, slots, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	st := &gatedStore{Store: store.NewMemory(), gate: make(chan struct{})}
	var p atomic.Pointer[partition.Partition]
	lag := ingest.NewLag(func() map[int32]int64 {
		if p := p.Load(); p != nil {
			return p.AppliedIngest()
		}
		return nil
	})
	log := &memLog{next: map[int32]int64{}}
	part := partition.Start(partition.Config{
		Config: core.Config{ID: 1, Range: keyspace.Range{From: 0, To: slots}, Slots: slots, Epoch: 1},
		Store:  st,
		WAL:    log,
		Ingest: consumer{ingest.Config{Client: []kgo.Opt{kgo.SeedBrokers(brokers...)}, Topic: topic, Lag: lag}},
		Log:    zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	p.Store(part)
	defer part.Close()
	opened := false
	defer func() {
		if !opened {
			close(st.gate) // let the partition close
		}
	}()
	eventually(t, "the partition serves", part.Serving)

	last := map[int32]*kgo.Record{} // the last record of each slot
	for i := range records {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if keyspace.Slot(r.Key, slots) != r.Partition {
			t.Fatalf("the producer's partitioner put %s in slot %d, sluice's in %d", r.Key, r.Partition, keyspace.Slot(r.Key, slots))
		}
		last[r.Partition] = r
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	endOf := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { endOf[o.Partition] = o.Offset })
	lag.SetEnds(endOf) // what the node's periodic listing does

	eventually(t, "the consumer has fetched every record", func() bool {
		s := lag.Slots()
		for _, l := range s {
			if l.Fetched != 0 {
				return false
			}
		}
		return len(s) == slots
	})
	for _, l := range lag.Slots() {
		if l.Applied != endOf[l.Slot] || l.Applied == 0 {
			t.Fatalf("slot %d: applied lag %d with no store write done, want the slot's %d records", l.Slot, l.Applied, endOf[l.Slot])
		}
	}

	close(st.gate)
	opened = true
	checked := map[int32]bool{}
	eventually(t, "every slot's applied lag is 0", func() bool {
		for _, l := range lag.Slots() {
			if l.Applied != 0 || checked[l.Slot] {
				continue
			}
			r := last[l.Slot]
			got, err := part.Get(ctx, r.Key)
			if err != nil || !got.Found || string(got.Value.Data) != string(r.Value) {
				t.Fatalf("slot %d: applied lag 0 but Get(%s) = %+v %v, want %s", l.Slot, r.Key, got, err, r.Value)
			}
			checked[l.Slot] = true
		}
		return len(checked) == slots
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
