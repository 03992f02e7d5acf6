package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A second `sluice serve` with a node id a live process serves, on another
// data directory, exits at once with a message naming the live one's
// address; the first goes on serving.
func TestSecondServeOfANodeIDIsRefused(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	dir := t.TempDir()
	first := newProc(t, cluster, dir)
	first.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The cluster's control token (registry records are sealed under a key
	// derived from it: another token is another cluster).
	cmd := exec.CommandContext(ctx, sluiceBin, "serve", "--brokers", strings.Join(kafkatest.Brokers(t), ","), "--cluster", cluster,
		"--control-token-file", filepath.Join(dir, "control.token"),
		"--data-dir", t.TempDir(), "--data-addr", freeAddr(t), "--control-addr", freeAddr(t), "--http-addr", "-")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil || err == nil || !strings.Contains(out.String(), first.addr) || !strings.Contains(out.String(), "node id in use") {
		t.Fatalf("second sluice serve of node n1: %v (deadline: %v), want a refusal naming %s\n%s", err, ctx.Err(), first.addr, out.String())
	}
	t.Logf("second serve: %s", lastLine(out.String()))
	if err := first.waitServingWithin(60 * time.Second); err != nil {
		t.Fatalf("the first node stopped serving: %v", err)
	}
}

// The case: a node's data directory is copied and a second process
// of the node id starts on the copy while the first still answers
// linearizable reads inside its lease (the start-up check cannot reach it:
// it advertises an address nothing listens on). Once the second has
// acknowledged k = new, the first must never answer k = old: the second
// waits the lease (the copy's record was not written by the incarnation
// before it on that directory), and the first stops serving, naming it.
func TestCopiedDataDirNeverServesAStaleRead(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	dir := t.TempDir()
	p := newProc(t, cluster, dir)
	p.start() // serving: every partition recorded that it served
	p.kill()
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	const lease = "60s" // long: a stale read is in reach for the whole test
	first := newProc(t, cluster, dir, "--lease", lease, "--advertise-addr", freeAddr(t))
	first.start() // on its own directory: no lease wait
	fc := dataClient(t, first.addr)
	put(t, fc, "k", "old") // its lease runs from this commit
	second := newProc(t, cluster, copied, "--lease", lease)
	second.startNoWait()
	if err := second.waitServingWithin(180 * time.Second); err != nil {
		t.Fatal(err)
	}
	put(t, dataClient(t, second.addr), "k", "new")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	got, err := fc.Get(ctx, &sluicev1.GetRequest{Key: []byte("k")})
	cancel()
	if err == nil && string(got.Value) != "new" {
		t.Fatalf("after the second process acknowledged k = new, the first answered a linearizable Get(k) = %q", got.Value)
	}
	t.Logf("the first process's Get(k) after the second's write: %v", err)
	select {
	case <-first.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("the first process still runs 60s after a newer process of its node id registered")
	}
	if b, _ := os.ReadFile(first.logPath); !strings.Contains(string(b), "newer process of this node id") || !strings.Contains(string(b), second.addr) {
		t.Fatalf("the first process's log does not name the newer process at %s:\n%s", second.addr, lastLine(string(b)))
	}
}

// put writes key = value and waits for the acknowledgement.
func put(t *testing.T, dc sluicev1.DataClient, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dc.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte(key), Value: []byte(value)}}}); err != nil {
		t.Fatalf("upsert %s = %s: %v", key, value, err)
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
