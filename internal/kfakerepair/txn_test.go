package kfakerepair

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kafkatxn"
)

// A kill while kfake wrote a transaction's commit markers: partition a has
// its marker, b not. kfake alone would abort b's part at restart; once the
// commit is completed both parts read. A transaction that never began to
// commit is aborted with a marker, and stays aborted after the next crash,
// once its producer has committed again (kfake alone would then read it as
// part of that commit).
func TestOpenTransactionsAreEndedBeforeKfakeStarts(t *testing.T) {
	c, dir, ctx := startKfake(t, "a", "b")
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	txn := func(id, key string, commit bool) {
		t.Helper()
		for attempt := 0; ; attempt++ {
			watch, watchOpt, err := kafkatxn.WatchCommits(opts)
			if err != nil {
				t.Fatal(err)
			}
			w, err := kgo.NewClient(append([]kgo.Opt{kgo.TransactionalID(id)}, append(opts, watchOpt)...)...)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for _, topic := range []string{"a", "b"} {
				if err := w.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if commit {
				if err := w.EndTransaction(ctx, kgo.TryCommit); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			// franz-go's first-transaction abort (kafkatxn/commitwatch.go):
			// again, with a new producer.
			if !watch.Aborted() || attempt == 4 {
				return
			}
		}
	}
	txn("x", "first", true)
	txn("y", "open", false) // killed before it committed
	txn("x", "half", true)
	waitForFiles(t, dir)
	img := crashImage(t, dir)
	c.Close()
	// Killed after a's marker of "half", before b's and before the
	// coordinator's endtx entry.
	dropLastMarker(t, filepath.Join(img, "partitions", "b-0", "0.dat"))
	cutPIDsLogBeforeLastEndTx(t, filepath.Join(img, "pids.log"))

	rep, err := Repair(img, time.Now())
	finished := slices.Sorted(slices.Values(rep.Ended))
	if err != nil || len(finished) != 3 || !strings.HasSuffix(finished[0], "aborted") || !strings.HasSuffix(finished[1], "aborted") || !strings.HasSuffix(finished[2], "committed") {
		t.Fatalf("ended %v (%v); want y aborted in a-0 and b-0, x committed in b-0", finished, err)
	}
	if again, err := Repair(img, time.Now()); err != nil || len(again.Lines()) != 0 {
		t.Fatalf("a second pass did %v (%v)", again.Lines(), err)
	}
	c = restartKfake(t, img)
	opts = []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	replays(t, opts, "first", "half")
	txn("y", "later", true)     // the aborted producer commits again
	again := crashImage(t, img) // and the broker crashes again
	c.Close()
	repairOK(t, again)
	c = restartKfake(t, again)
	defer c.Close()
	replays(t, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "first", "half", "later")
}

// replays checks that topics a and b each replay keys.
func replays(t *testing.T, opts []kgo.Opt, keys ...string) {
	t.Helper()
	for _, topic := range []string{"a", "b"} {
		if got := replay(t, opts, topic); !slices.Equal(got, keys) {
			t.Errorf("%s replays %v, want %v", topic, got, keys)
		}
	}
}

// replay is the keys partition 0 of topic replays, read committed.
func replay(t *testing.T, opts []kgo.Opt, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	if _, err := kafkaread.Replay(ctx, opts, topic, map[int32]int64{0: 0}, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			got = append(got, string(r.Key))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// repairOK repairs dir.
func repairOK(t *testing.T, dir string) {
	t.Helper()
	if _, err := Repair(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// dropLastMarker cuts the last control batch out of segment seg, as if the
// process had died before writing it; the batches after it stay (their
// offsets leave a gap). The index keeps an entry too many: the repair
// rebuilds it.
func dropLastMarker(t *testing.T, seg string) {
	t.Helper()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	ms := markers(data)
	if len(ms) == 0 {
		t.Fatalf("%s has no marker", seg)
	}
	at, size := ms[len(ms)-1][0], ms[len(ms)-1][1]
	if err := os.WriteFile(seg, append(data[:at:at], data[at+size:]...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// markers returns where each control batch (a transaction marker) of a
// kfake segment starts, and its size.
func markers(data []byte) [][2]int {
	var at [][2]int
	for pos := 0; pos+23 <= len(data); {
		n := 12 + int(binary.BigEndian.Uint32(data[pos+8:pos+12]))
		if pos+n > len(data) {
			break // torn: being written
		}
		if binary.BigEndian.Uint16(data[pos+21:pos+23])&0x20 != 0 {
			at = append(at, [2]int{pos, n})
		}
		pos += n
	}
	return at
}

// waitForFiles waits (30 s at most) until kfake's files under dir hold the
// two transactions over a and b that EndTxn answered: their markers on both
// partitions and their endtx entries. kfake may write them after it
// answered, and a crash image taken before would lack them.
func waitForFiles(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, _ := os.ReadFile(filepath.Join(dir, "partitions", "a-0", "0.dat"))
		b, _ := os.ReadFile(filepath.Join(dir, "partitions", "b-0", "0.dat"))
		pids, _ := os.ReadFile(filepath.Join(dir, "pids.log"))
		if len(markers(a)) >= 2 && len(markers(b)) >= 2 && len(endTxns(pids)) >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s kfake's files hold %d and %d markers on a and b and %d endtx entries, want 2 each", len(markers(a)), len(markers(b)), len(endTxns(pids)))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
