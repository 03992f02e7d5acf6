package registry

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/topics"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func open(t *testing.T) (*Registry, Config) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tp := topics.Names{Cluster: kafkatest.ClusterName(t)}
	if _, err := topics.EnsureAll(context.Background(), cl, tp, 16, 1); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Client: opts, Topic: tp.Registry(), Key: testKey}
	r, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, cfg
}

// Writers on different nodes are serialised: of many concurrent updates that
// each add a partition over the same slots, exactly one lands, and every
// reader ends with the same view.
func TestConcurrentUpdatesAreSerialised(t *testing.T) {
	r, cfg := open(t)
	others := make([]*Registry, 3)
	for i := range others {
		o, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		others[i] = o
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i, o := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := o.Update(context.Background(), func(v *View) ([]Mutation, error) {
				if p, ok := v.Overlapping(keyspace.Range{From: 0, To: 8}, 0); ok {
					return nil, errors.New("overlaps " + p.Range.String())
				}
				return []Mutation{PutPartition(Partition{ID: uint32(i + 1), Range: keyspace.Range{From: 0, To: 8}, Owner: "n", Epoch: 1})}, nil
			})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d overlapping adds succeeded, want exactly 1", wins)
	}
	if err := r.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.View().Partitions); n != 1 {
		t.Fatalf("the registry holds %d partitions, want 1", n)
	}
}

// Removal, node announcements and a record that does not decode (skipped).
func TestViewFoldsRecords(t *testing.T) {
	r, cfg := open(t)
	ctx := context.Background()
	err := r.Update(ctx, func(*View) ([]Mutation, error) {
		return []Mutation{
			PutNode(Node{ID: "n1", DataAddr: "a:1", ControlAddr: "a:2"}),
			PutPartition(Partition{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Owner: "n1", Epoch: 1}),
			PutPartition(Partition{ID: 2, Range: keyspace.Range{From: 4, To: 8}, Owner: "n1", Epoch: 1}),
			{Key: "partition/3", Value: []byte("{not json")},
			{Key: "mystery", Value: []byte("x")},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update(ctx, func(*View) ([]Mutation, error) { return []Mutation{DeletePartition(1)}, nil }); err != nil {
		t.Fatal(err)
	}
	// A reader opened later folds the same log to the same view.
	later, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	for _, v := range []*View{r.View(), later.View()} {
		if len(v.Partitions) != 1 || v.Partitions[2].Range.From != 4 || v.Nodes["n1"].ControlAddr != "a:2" {
			t.Fatalf("view %+v", v)
		}
	}
}

// Epochs only grow, across removals: a re-added partition's epoch is above
// every epoch any partition ever had.
func TestEpochsOutliveRemovals(t *testing.T) {
	r, cfg := open(t)
	ctx := context.Background()
	add := func(id uint32) uint64 {
		var e uint64
		if err := r.Update(ctx, func(v *View) ([]Mutation, error) {
			epoch, bump := v.NextEpoch()
			e = epoch
			return []Mutation{bump, PutPartition(Partition{ID: id, Range: keyspace.Range{From: 0, To: 4}, Owner: "n", Epoch: epoch})}, nil
		}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := add(1)
	second := add(1) // a move
	if err := r.Update(ctx, func(*View) ([]Mutation, error) { return []Mutation{DeletePartition(1)}, nil }); err != nil {
		t.Fatal(err)
	}
	later, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if later.View().MaxEpoch != second || second <= first {
		t.Fatalf("epochs %d, %d; a fresh reader sees max %d", first, second, later.View().MaxEpoch)
	}
	if third := add(2); third <= second {
		t.Fatalf("a new partition got epoch %d, not above %d", third, second)
	}
}
