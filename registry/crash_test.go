package registry

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The embedded broker (kfake) restarted after a crash with a registry write in
// flight aborts it without a marker. The registry still opens, takes the next
// update, and a new reader sees every committed write and not the aborted one.
func TestRegistryAfterACrashWithAWriteInFlight(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(1, "reg"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	r, err := Open(ctx, Config{Client: opts, Topic: "reg", Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	put := func(r *Registry, id string) {
		t.Helper()
		if err := r.Update(ctx, func(*View) ([]Mutation, error) { return []Mutation{PutNode(Node{ID: id})}, nil }); err != nil {
			t.Fatalf("update %s: %v", id, err)
		}
	}
	put(r, "n1")
	r.Close()
	// A writer killed mid-transaction: the on-disk state is its crash image.
	w, err := kgo.NewClient(append([]kgo.Opt{kgo.TransactionalID("reg.writer"), kgo.DefaultProduceTopic("reg")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := w.ProduceSync(ctx, &kgo.Record{Key: []byte("node/lost"), Value: []byte(`{"id":"lost"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "image")
	if err := os.CopyFS(img, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c.Close()

	c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(img))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts = []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	r, err = Open(ctx, Config{Client: opts, Topic: "reg", Key: testKey})
	if err != nil {
		t.Fatalf("opening the registry after the crash: %v", err)
	}
	defer r.Close()
	put(r, "n2")
	fresh, err := Open(ctx, Config{Client: opts, Topic: "reg", Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	var ids []string
	for id := range fresh.View().Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"n1", "n2"}) {
		t.Fatalf("a new reader sees nodes %v, want [n1 n2]", ids)
	}
}
