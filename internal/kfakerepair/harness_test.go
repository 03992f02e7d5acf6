package kfakerepair

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The tests crash kfake by copying its data directory while it runs (what a
// kill -9 leaves on the disk), then repair the copy and start kfake on it.

// startKfake starts a one-broker kfake on a new data directory with topics
// of one partition each; it returns the directory and a context for the
// test's calls. The caller closes the cluster.
func startKfake(t *testing.T, topics ...string) (*kfake.Cluster, string, context.Context) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "kafka")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c, dir, ctx
}

// crashImage copies dir as it is now into a new directory: the files a kill
// -9 at this moment would leave.
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	img := t.TempDir()
	if err := os.CopyFS(img, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return img
}

// restartKfake starts kfake on the data directory img. The caller closes it.
func restartKfake(t *testing.T, img string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(img))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
