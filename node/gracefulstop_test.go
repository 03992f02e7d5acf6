package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A graceful stop (Close) under concurrent writers loses nothing
// acknowledged, in --wal none (the final backups hold it) and --wal disk
// (the disk does): a node started afterwards on the same data directory and
// bucket has every write acknowledged before or during the close.
func TestGracefulStopUnderLoadLosesNothingAcknowledged(t *testing.T) {
	for _, mode := range []string{WALNone, WALDisk} {
		t.Run(mode, func(t *testing.T) {
			cfg := Config{WAL: mode, SnapshotURL: "file://" + t.TempDir(), DataDir: t.TempDir(), Cluster: kafkatest.ClusterName(t), BackupEvery: 300 * time.Millisecond}
			cfg.Brokers = kafkatest.Brokers(t)
			logf, err := os.Create(t.TempDir() + "/node.log")
			if err != nil {
				t.Fatal(err)
			}
			defer logf.Close()
			cfg.Log = zerolog.New(logf).Level(zerolog.InfoLevel)
			for round := range 2 {
				n := openNode(t, cfg)
				acked, _ := writeThenClose(t, n, round, time.Duration(300+400*round)*time.Millisecond, nil)
				n.conn.Close()
				if len(acked) == 0 {
					t.Fatalf("round %d: no write was acknowledged", round)
				}
				n = openNode(t, cfg)
				keys := make([]string, 0, len(acked))
				for k := range acked {
					keys = append(keys, k)
				}
				got := dumpKeys(t, n, keys)
				n.conn.Close()
				n.Close()
				if log, _ := os.ReadFile(logf.Name()); true {
					t.Logf("round %d: re-syncs so far: %d", round, strings.Count(string(log), `"cause":"re-sync"`))
				}
				lost := 0
				for k, v := range acked {
					if got[k] != v {
						if lost < 5 {
							t.Errorf("round %d: after a graceful stop %s = %q, want the acknowledged %q", round, k, got[k], v)
						}
						lost++
					}
				}
				if lost > 0 {
					log, _ := os.ReadFile(logf.Name())
					t.Fatalf("round %d: %d of %d acknowledged writes lost by a graceful stop; node log:\n%s", round, lost, len(acked), log)
				}
			}
		})
	}
}

// writeThenClose writes batches of unique keys (over several partitions)
// from several clients for about d, runs during (if set) while they write,
// then closes the node while they keep writing. It returns the
// acknowledged writes: the entries of an answer without an error, less
// those of its failed parts (resp.Failures), and how many entries were in
// failed parts of answers without an error.
func writeThenClose(t *testing.T, n *testNode, round int, d time.Duration, during func()) (map[string]string, int) {
	t.Helper()
	var (
		mu      sync.Mutex
		acked   = map[string]string{}
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		partial int
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				req := &sluicev1.UpsertRequest{}
				for k := range 4 {
					req.Entries = append(req.Entries, &sluicev1.Entry{Key: fmt.Appendf(nil, "r%d-w%d-b%d-k%d", round, w, b, k), Value: fmt.Appendf(nil, "v%d-%d-%d", round, w, b)})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := n.data.Upsert(ctx, req)
				cancel()
				if err != nil {
					continue // refused (stopping): try again until stop
				}
				// Keys in several partitions: each part is acknowledged or
				// fails on its own (the failed ones are in resp.Failures).
				failed := map[uint32]bool{}
				for _, f := range resp.Failures {
					for _, i := range f.Entries {
						failed[i] = true
					}
				}
				mu.Lock()
				partial += len(failed)
				for i, e := range req.Entries {
					if !failed[uint32(i)] {
						acked[string(e.Key)] = string(e.Value)
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(d)
	if during != nil {
		during()
	}
	n.Close()
	close(stop)
	wg.Wait()
	t.Logf("round %d: %d writes acknowledged, %d failed in a partly failed batch", round, len(acked), partial)
	return acked, partial
}

// dumpKeys reads keys from n: key → value of those found.
func dumpKeys(t *testing.T, n *testNode, keys []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(keys); i += 500 {
		req := &sluicev1.GetManyRequest{}
		for _, k := range keys[i:min(i+500, len(keys))] {
			req.Keys = append(req.Keys, []byte(k))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := n.data.GetMany(ctx, req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range resp.Results {
			if r.Found {
				out[string(req.Keys[j])] = string(r.Value)
			}
		}
	}
	return out
}

// Partitions that re-sync under load (their ownership lease could not be
// renewed: the registry's end could not be read for a while) fail the
// parts of multi-partition Upserts they held, and the answer, without an
// error, names those parts (PartFailure) while the other parts are
// acknowledged. A graceful stop then keeps every acknowledged part and
// none of the failed ones: what a client must count as acknowledged is
// the parts that did not fail, not every entry of an answer without an
// error (the crash loops once did, and reported acknowledged writes lost).
func TestGracefulStopAfterResyncsKeepsTheAcknowledgedParts(t *testing.T) {
	dir, bucket := t.TempDir(), "file://"+t.TempDir()
	cfg := Config{Brokers: []string{}, EmbeddedKafkaAddr: "127.0.0.1:0", Cluster: "resync", WAL: WALNone, SnapshotURL: bucket, DataDir: dir,
		OwnershipLease: 2 * time.Second, BackupEvery: 300 * time.Millisecond}
	logf, err := os.Create(t.TempDir() + "/node.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cfg.Log = zerolog.New(logf).Level(zerolog.InfoLevel)
	n := openNode(t, cfg)
	var cut atomic.Bool
	n.embedded.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.embedded.KeepControl()
		if cut.Load() {
			return nil, errors.New("cut off"), true // the connection closes
		}
		return nil, nil, false
	})
	acked, partial := writeThenClose(t, n, 0, time.Second, func() {
		cut.Store(true) // no renewal of the lease: every partition re-syncs
		time.Sleep(4 * time.Second)
		cut.Store(false)
		time.Sleep(4 * time.Second) // the re-syncs end (a lease wait), writes go on
	})
	n.conn.Close()
	log, _ := os.ReadFile(logf.Name())
	resyncs := strings.Count(string(log), `"cause":"re-sync"`)
	t.Logf("%d writes acknowledged, %d in failed parts of answers without an error; %d re-syncs", len(acked), partial, resyncs)
	if resyncs == 0 || partial == 0 {
		t.Fatalf("the cut made %d re-syncs and %d entries in failed parts: the test did not test what it says", resyncs, partial)
	}
	n = openNode(t, cfg)
	defer func() { n.conn.Close(); n.Close() }()
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	got := dumpKeys(t, n, keys)
	lost := 0
	for k, v := range acked {
		if got[k] != v {
			if lost < 5 {
				t.Errorf("after a graceful stop %s = %q, want the acknowledged %q", k, got[k], v)
			}
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost by a graceful stop", lost, len(acked))
	}
}
