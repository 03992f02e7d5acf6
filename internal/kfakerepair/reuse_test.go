package kfakerepair

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// A producer on EndTxn v0–4 keeps its epoch from one transaction to the
// next. Its first transaction commits in a; its second writes to b with a
// CreateTime an hour behind the broker (an event time) and is killed before
// EndTxn. The second never committed: the repair aborts it.
func TestReusedEpochTransactionWithoutEndTxnIsAborted(t *testing.T) {
	c, dir, ctx := startKfake(t, "a", "b")
	w, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("old"), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := w.ProduceSync(ctx, &kgo.Record{Topic: "a", Key: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := w.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := w.ProduceSync(ctx, &kgo.Record{Topic: "b", Key: []byte("never-committed"), Timestamp: time.Now().Add(-time.Hour)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, dir) // killed before EndTxn
	c.Close()
	rep, err := Repair(img, time.Now())
	if err != nil || len(rep.Ended) != 1 || !strings.HasSuffix(rep.Ended[0], "aborted") {
		t.Fatalf("ended %v (%v); want b-0's open transaction aborted", rep.Ended, err)
	}
	c = restartKfake(t, img)
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	if got := replay(t, opts, "a"); !slices.Equal(got, []string{"first"}) {
		t.Errorf("a replays %v, want [first]", got)
	}
	if got := replay(t, opts, "b"); len(got) != 0 {
		t.Errorf("b replays %v, want nothing", got)
	}
}

// The same producer's second transaction, over a and b, is cut short in
// its EndTxn: a has its commit marker, b not, and the coordinator never
// wrote its endtx entry. The epoch's first transaction committed, so the
// epoch has two groups of markers for one endtx: the second's commit was
// decided, and b's part is committed too.
func TestReusedEpochTransactionCutShortInEndTxnIsCommitted(t *testing.T) {
	c, dir, ctx := startKfake(t, "a", "b")
	w, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("old"), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, key := range []string{"first", "second"} {
		if err := w.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, topic := range []string{"a", "b"} {
			if err := w.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Timestamp: time.Now().Add(-time.Hour)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	// kfake may write a transaction's endtx entry after EndTxn answered: an
	// image taken at once could lack the second's, and the cut below would
	// then remove the first's (the repair, rightly, aborts then). Wait for
	// both, then cut the files as the crash would have.
	waitForFiles(t, dir)
	img := crashImage(t, dir)
	c.Close()
	dropLastMarker(t, filepath.Join(img, "partitions", "b-0", "0.dat"))
	cutPIDsLogBeforeLastEndTx(t, filepath.Join(img, "pids.log"))
	rep, err := Repair(img, time.Now())
	if err != nil || len(rep.Ended) != 1 || !strings.HasSuffix(rep.Ended[0], "committed") {
		t.Fatalf("ended %v (%v); want b-0's part committed", rep.Ended, err)
	}
	c = restartKfake(t, img)
	defer c.Close()
	replays(t, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "first", "second")
}
