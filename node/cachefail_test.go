package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The outside tester's D2: a full cache disk stopped the node from starting,
// although the cache is disposable. A cache that cannot be opened at all
// (here its directory cannot be made: --cache-dir is a file) leaves its
// partition serving from the durable store.
func TestACacheThatCannotOpenNeverStopsThePartition(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, Config{WAL: WALDisk, Store: StoreCached, CacheDir: notADir})
	ctx := context.Background()
	if _, err := n.data.Upsert(ctx, upsert("k", "v")); err != nil {
		t.Fatal(err)
	}
	if got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("k")}); err != nil || string(got.Value) != "v" {
		t.Fatalf("get k: %+v %v", got, err)
	}
}
