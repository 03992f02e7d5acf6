package resp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// --resp-consistency: every connection starts at the node's level, which
// SLUICE.CONSISTENCY changes for that connection only; pooled clients and
// tools such as redis-benchmark cannot send a command on each connection.
// An unknown level is refused at start, naming the flag and the levels.
func TestRESPConnectionsStartAtTheNodesLevel(t *testing.T) {
	n := startNode(t, node.Config{RESPConsistency: "Eventual"})
	ctx := context.Background()
	a, b := newClient(t, n).Conn(), newClient(t, n).Conn()
	defer a.Close()
	defer b.Close()
	if got, err := a.Do(ctx, "SLUICE.CONSISTENCY").Text(); err != nil || got != "eventual" {
		t.Fatalf("a new connection's level: %q %v, want eventual", got, err)
	}
	if err := a.Do(ctx, "SLUICE.CONSISTENCY", "linearizable").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Do(ctx, "SLUICE.CONSISTENCY").Text(); err != nil || got != "eventual" {
		t.Fatalf("another connection's level after the first changed its own: %q %v, want eventual", got, err)
	}
	if err := a.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "an EVENTUAL GET of the write", func() bool { return b.Get(ctx, "k").Val() == "v" })

	cfg := node.Config{RESPConsistency: "strong", DataDir: t.TempDir(), ControlToken: "t", Brokers: []string{"127.0.0.1:1"}, Cluster: "c"}
	_, err := node.Start(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "--resp-consistency") || !strings.Contains(err.Error(), "linearizable (the default), session or eventual") {
		t.Fatalf("--resp-consistency strong: %v, want refused naming the flag and the levels", err)
	}
}
