package registry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/keyspace"
)

// testKey is the cluster key of the package's tests.
var testKey = DeriveKey("registry-test-secret")

// A seal covers the topic, the key, the value (a tombstone is not an empty
// value) and the generation: changing any of them, or sealing under another
// key, breaks it.
func TestSealCoversEveryField(t *testing.T) {
	s := sealer{key: testKey, topic: "c.registry"}
	m := PutNode(Node{ID: "n1", DataAddr: "a:1", ControlAddr: "a:2"})
	good := s.seal(m, 7)
	if gen, err := s.open(good); err != nil || gen != 7 {
		t.Fatalf("open of a sealed record: %d %v", gen, err)
	}
	tamper := map[string]func(r *kgo.Record){
		"value":       func(r *kgo.Record) { r.Value = []byte(`{"id":"n1","data_addr":"a:1","control_addr":"evil:2"}`) },
		"key":         func(r *kgo.Record) { r.Key = []byte("node/n2") },
		"tombstone":   func(r *kgo.Record) { r.Value = nil },
		"generation":  func(r *kgo.Record) { r.Headers[0].Value = []byte("8") },
		"no headers":  func(r *kgo.Record) { r.Headers = nil },
		"two seals":   func(r *kgo.Record) { r.Headers = append(r.Headers, r.Headers[1]) },
		"negative":    func(r *kgo.Record) { r.Headers[0].Value = []byte("-1") },
		"bad mac len": func(r *kgo.Record) { r.Headers[1].Value = r.Headers[1].Value[:4] },
	}
	for what, f := range tamper {
		r := s.seal(m, 7)
		f(r)
		if _, err := s.open(r); !errors.Is(err, ErrUnsealed) {
			t.Errorf("a record with its %s changed opens: %v", what, err)
		}
	}
	if _, err := (sealer{key: DeriveKey("another"), topic: "c.registry"}).open(good); !errors.Is(err, ErrUnsealed) {
		t.Errorf("a record opens under another key: %v", err)
	}
	if _, err := (sealer{key: testKey, topic: "d.registry"}).open(good); !errors.Is(err, ErrUnsealed) {
		t.Errorf("a record opens in another cluster's topic: %v", err)
	}
	empty, tomb := s.seal(Mutation{Key: "x", Value: []byte{}}, 1), s.seal(Mutation{Key: "x"}, 1)
	if string(empty.Headers[1].Value) == string(tomb.Headers[1].Value) {
		t.Error("a tombstone and an empty value have the same seal")
	}
}

func TestOpenNeedsAKey(t *testing.T) {
	if _, err := Open(context.Background(), Config{Topic: "reg"}); err == nil {
		t.Fatal("a registry opened without a cluster key")
	}
}

// What kcat -P -k node/n1 did (issue 22, item 9): a record produced straight
// to the registry topic by a client without the cluster key re-announces a
// node with another control address. Every reader ignores it, counts it and
// keeps the sealed announcement; so is a captured sealed record replayed
// over a newer one.
func TestForgedAndReplayedRecordsAreIgnored(t *testing.T) {
	r, cfg := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(n Node) {
		t.Helper()
		if err := r.Update(ctx, func(*View) ([]Mutation, error) { return []Mutation{PutNode(n)}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	put(Node{ID: "n1", DataAddr: "old:1", ControlAddr: "old:2"})
	want := Node{ID: "n1", DataAddr: "want:1", ControlAddr: "want:2"}
	put(want)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.DefaultProduceTopic(cfg.Topic)}, cfg.Client...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	forged := PutNode(Node{ID: "n1", DataAddr: "evil:1", ControlAddr: "evil:2"})
	forgedNew := PutNode(Node{ID: "n9", DataAddr: "evil:1", ControlAddr: "evil:2"})
	// The first sealed announcement, captured and produced again.
	replay := (sealer{key: cfg.Key, topic: cfg.Topic}).seal(PutNode(Node{ID: "n1", DataAddr: "old:1", ControlAddr: "old:2"}), 0)
	recs := []*kgo.Record{
		{Key: []byte(forged.Key), Value: forged.Value},
		{Key: []byte(forgedNew.Key), Value: forgedNew.Value},
		(sealer{key: DeriveKey("a guess"), topic: cfg.Topic}).seal(forged, 1<<40),
		replay,
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	later, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	for name, reg := range map[string]*Registry{"the tailing reader": r, "a new reader": later} {
		if err := reg.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		v := reg.View()
		if v.Nodes["n1"] != want || len(v.Nodes) != 1 {
			t.Errorf("%s: nodes %+v, want only %+v", name, v.Nodes, want)
		}
		if reg.Errs() != len(recs) {
			t.Errorf("%s skipped %d records, want %d", name, reg.Errs(), len(recs))
		}
	}
	// The registry still takes sealed updates after them.
	put(Node{ID: "n1", DataAddr: "next:1", ControlAddr: "next:2"})
	if got := r.View().Nodes["n1"].ControlAddr; got != "next:2" {
		t.Fatalf("after a sealed update n1's control address is %s", got)
	}
}

// A registry written before records were sealed: a reader skips its records
// and says so (a node then refuses to take it for an empty registry); one
// that adopts them folds them until its view is resealed, after which every
// reader sees them sealed and skips any later unsealed record.
func TestUnsealedRegistryIsAdoptedOnlyWhenAsked(t *testing.T) {
	r, cfg := open(t)
	r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.DefaultProduceTopic(cfg.Topic)}, cfg.Client...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	unsealed := func(ms ...Mutation) {
		t.Helper()
		for _, m := range ms {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(m.Key), Value: m.Value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := Partition{ID: 1, Range: keyspace.Range{From: 0, To: 16}, Owner: "n1", Epoch: 3}
	unsealed(PutNode(Node{ID: "n1", DataAddr: "a:1", ControlAddr: "a:2"}), PutPartition(old))

	strict, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	if adopted, skipped := strict.Unsealed(); adopted || !skipped || len(strict.View().Partitions) != 0 {
		t.Fatalf("a strict reader of an unsealed registry: adopted %v skipped %v view %+v", adopted, skipped, strict.View())
	}
	acfg := cfg
	acfg.AdoptUnsealed = true
	adopter, err := Open(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adopter.Close()
	if adopted, _ := adopter.Unsealed(); !adopted || !adopter.View().Partitions[1].Equal(old) {
		t.Fatalf("the adopting reader: adopted %v, view %+v", adopted, adopter.View())
	}
	if err := adopter.Update(ctx, func(v *View) ([]Mutation, error) { return v.Reseal(), nil }); err != nil {
		t.Fatal(err)
	}
	unsealed(PutNode(Node{ID: "n1", DataAddr: "evil:1", ControlAddr: "evil:2"}))
	for name, reg := range map[string]*Registry{"strict": strict, "adopter": adopter} {
		if err := reg.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if adopted, skipped := reg.Unsealed(); adopted || skipped {
			t.Errorf("%s after the reseal: adopted %v skipped %v", name, adopted, skipped)
		}
		v := reg.View()
		if !v.Partitions[1].Equal(old) || v.Nodes["n1"].ControlAddr != "a:2" || v.MaxEpoch != 3 {
			t.Errorf("%s after the reseal and a forged record: %+v", name, v)
		}
	}
}
