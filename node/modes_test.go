package node

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A node refuses a storage mode that makes no sense, naming the valid ones.
func TestNodeRefusesStorageModesThatMakeNoSense(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{WAL: "none", Store: "badger", SnapshotURL: "file:///tmp"}, "--wal none --store badger is not a storage mode: with no write-ahead log only a memory store"},
		{Config{WAL: "kafka", Store: "memory"}, "--wal kafka --store memory is not a storage mode"},
		{Config{WAL: "disk", Store: "memory"}, "--wal disk --store memory is not a storage mode"},
		{Config{WAL: "none", Store: "cached", CacheDir: "c", SnapshotURL: "file:///tmp"}, "--wal none --store cached is not a storage mode"},
		{Config{WAL: "raft"}, "--wal raft --store badger is not a storage mode"},
		{Config{Store: "rocks"}, "--wal kafka --store rocks is not a storage mode"},
		{Config{WAL: "none"}, "--wal none keeps the data in memory: it needs --snapshot-url"},
		{Config{Store: "cached"}, "--store cached needs --cache-dir"},
		{Config{Store: "cached", CacheDir: "d", DataDir: "d"}, "--cache-dir must not be --data-dir"},
		{Config{WAL: "none", SnapshotURL: "file:///tmp", BackupEvery: -1}, "must be positive"},
	} {
		cfg := tc.cfg
		cfg.ControlToken = "t"
		if cfg.DataDir == "" {
			cfg.DataDir = t.TempDir()
		}
		err := cfg.setDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "is not a storage mode") && !strings.Contains(err.Error(), "kafka+badger kafka+cached disk+badger disk+cached none+memory") {
			t.Errorf("%+v: %v does not name the valid modes", tc.cfg, err)
		}
	}
	for _, ok := range []Config{{}, {WAL: "disk"}, {WAL: "none", SnapshotURL: "file:///tmp"}, {Store: "cached", CacheDir: "c"}, {WAL: "disk", Store: "cached", CacheDir: "c"}} {
		want := ok
		ok.ControlToken, ok.DataDir = "t", t.TempDir()
		if err := ok.setDefaults(); err != nil {
			t.Errorf("%+v refused: %v", want, err)
		}
	}
	c := Config{WAL: "none", SnapshotURL: "file:///tmp", ControlToken: "t", DataDir: t.TempDir()}
	if c.setDefaults(); c.Mode() != "none+memory" {
		t.Errorf("--wal none alone is %s, want none+memory", c.Mode())
	}
}

// modeConfigs are a node of each storage mode but kafka+badger (node_test.go's).
func modeConfigs(t *testing.T) map[string]Config {
	return map[string]Config{
		"disk+badger":  {WAL: WALDisk},
		"disk+cached":  {WAL: WALDisk, Store: StoreCached, CacheDir: t.TempDir()},
		"kafka+cached": {Store: StoreCached, CacheDir: t.TempDir()},
		"none+memory":  {WAL: WALNone, SnapshotURL: "file://" + t.TempDir()},
	}
}

// The bad input table holds in every storage mode: the same codes and
// messages, and nothing applied. ListPartitions shows the mode.
func TestBadInputIsTheSameInEveryMode(t *testing.T) {
	for mode, cfg := range modeConfigs(t) {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, cfg)
			for _, pi := range n.LocalStatus() {
				if pi.Mode != mode {
					t.Fatalf("partition %d shows mode %q, want %q", pi.Id, pi.Mode, mode)
				}
			}
			badInputChangesNothing(t, n)
			// And good input works: a write, a read, an increment.
			ctx := context.Background()
			if _, err := n.data.Upsert(ctx, upsert("k1", "v1", "k2", "v2")); err != nil {
				t.Fatal(err)
			}
			if got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("k2")}); err != nil || string(got.Value) != "v2" {
				t.Fatalf("get k2: %+v %v", got, err)
			}
			for i := 1; i <= 3; i++ {
				got, err := n.data.Increment(ctx, &sluicev1.IncrementRequest{Key: []byte("counter"), Delta: 2})
				if err != nil || got.Value != int64(2*i) {
					t.Fatalf("increment %d: %+v %v", i, got, err)
				}
			}
		})
	}
}

// badInputChangesNothing is node_test.go's bad input table (less the
// routing hints, which do not depend on the mode), and a refused increment.
func badInputChangesNothing(t *testing.T, n *testNode) {
	t.Helper()
	ctx := context.Background()
	refusedAlike(t, ctx, n, "good-key", append(badInput(ctx, n, "good-key"),
		badCase{"increment of a non-integer", func() error {
			if _, err := n.data.Upsert(ctx, upsert("text", "abc")); err != nil {
				return fmt.Errorf("setting up: %w", err)
			}
			_, err := n.data.Increment(ctx, &sluicev1.IncrementRequest{Key: []byte("text"), Delta: 1})
			return err
		}, codes.FailedPrecondition, "not"},
	))
	if got, _ := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("text")}); string(got.Value) != "abc" {
		t.Fatalf("a refused increment changed the value: %q", got.Value)
	}
}

// The outside tester's D1: under --wal disk a value badger would put in its
// value log (1,048,570 bytes under a 1-byte key, within an Upsert's 1 MiB)
// is refused with InvalidArgument naming the limit, in both disk modes, and
// the key keeps its acknowledged value.
func TestDiskModesRefuseAValueForBadgersValueLog(t *testing.T) {
	for _, mode := range []string{"disk+badger", "disk+cached"} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, modeConfigs(t)[mode])
			ctx := context.Background()
			if _, err := n.data.Upsert(ctx, upsert("x", "A")); err != nil {
				t.Fatal(err)
			}
			_, err := n.data.Upsert(ctx, upsert("x", strings.Repeat("B", 1_048_570)))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "1048545") {
				t.Fatalf("a value of 1,048,570 bytes: %v, want InvalidArgument naming the limit", err)
			}
			if got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("x")}); err != nil || string(got.Value) != "A" {
				t.Fatalf("get x: %+v %v", got, err)
			}
		})
	}
}
