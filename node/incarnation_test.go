package node

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/registry"
)

// A second process of a node id, on another data directory, is refused at
// start while the first is alive, with a message naming the first's
// address; the first goes on serving.
func TestSecondProcessOfANodeIDIsRefused(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	first := startNode(t, Config{Cluster: cluster, Partitions: 1})
	second, err := Start(context.Background(), Config{DataDir: t.TempDir(), Cluster: cluster, Brokers: kafkatest.Brokers(t), ControlToken: "test-token",
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-", Log: zerolog.Nop()})
	if err == nil {
		second.Close()
		t.Fatal("a second process of node n1 started beside the live one")
	}
	if !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), first.DataAddr()) {
		t.Fatalf("second process of node n1: %v, want ErrNodeIDInUse naming %s", err, first.DataAddr())
	}
	t.Logf("refused: %v", err)
	if !first.Ready() || first.Err() != nil {
		t.Fatalf("the first process stopped serving: %v", first.Err())
	}
}

// A copy of a data directory whose partitions recorded that they served
// does not skip the read-lease wait, even with the first process alive but
// out of reach of the start-up check (here: advertising an address nothing
// listens on); the first stops serving once it sees the copy's incarnation.
// A restart on the directory itself still skips the wait.
func TestCopiedDataDirWaitsTheLease(t *testing.T) {
	dir := t.TempDir()
	cluster := kafkatest.ClusterName(t)
	n := startNode(t, Config{DataDir: dir, Cluster: cluster, Partitions: 2, Lease: 50 * time.Millisecond})
	waitServedRecorded(t, dir, 2)
	gone := n.DataAddr()
	n.Close()
	holdAddr(t, gone)
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	// The first process is back on its own directory: it skips the wait (a
	// lease of an hour: serving within the deadline proves it).
	const long = time.Hour
	first := startLogged(t, Config{DataDir: dir, Cluster: cluster, Partitions: 2, Lease: long, AdvertiseAddr: deadAddr(t)}, &syncBuffer{})
	waitReady(t, first, "the restart on its own directory")

	// The copy starts beside it: the start-up check cannot reach the
	// first, so only the incarnations keep the two apart.
	logs := &syncBuffer{}
	twin := startLogged(t, Config{DataDir: copied, Cluster: cluster, Partitions: 2, Lease: long}, logs)
	waitsTheLease(t, twin, logs, 1)
	waitsTheLease(t, twin, logs, 2)
	select {
	case <-first.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the first process still serves 60s after a newer process of its node id registered")
	}
	if err := first.Err(); !errors.Is(err, ErrSuperseded) || !strings.Contains(err.Error(), twin.DataAddr()) {
		t.Fatalf("the first process stopped with %v, want ErrSuperseded naming %s", err, twin.DataAddr())
	}
	if first.Ready() {
		t.Fatal("the superseded process says it is ready")
	}
}

// waitReady waits, 60 s at most, until n serves.
func waitReady(t *testing.T, n *Node, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("%s is not serving within 60s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadAddr is a local address nothing listens on (a connection is refused).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Two processes of one node id starting at once both read the same previous
// incarnation; the registry serialises their Updates, and the one whose
// Update comes second finds the other registered and refuses, naming it.
func TestNextIncarnationRefusesAConcurrentStart(t *testing.T) {
	n := &Node{cfg: Config{NodeID: "n1"}}
	for _, ln := range []*net.Listener{&n.dataLn, &n.controlLn} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		*ln = l
	}
	prev := registry.Incarnation{Node: "n1", N: 1, DataAddr: "127.0.0.1:1"}
	other := registry.Incarnation{Node: "n1", N: 2, DataAddr: "10.0.0.9:7400", PID: 7, Host: "h"}
	v := &registry.View{Incarnations: map[string]registry.Incarnation{"n1": other}}
	_, _, err := n.nextIncarnation(v, prev)
	if !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), other.DataAddr) {
		t.Fatalf("start racing incarnation 2: %v, want ErrNodeIDInUse naming %s", err, other.DataAddr)
	}
	v.Incarnations["n1"] = prev
	inc, _, err := n.nextIncarnation(v, prev)
	if err != nil || inc.N != 2 {
		t.Fatalf("start after incarnation 1: %+v %v, want incarnation 2", inc, err)
	}
}

// The lease skip is taken only for a record of the incarnation just before
// this one, on this very directory.
func TestResumableOnlyFromThePreviousIncarnationHere(t *testing.T) {
	here, elsewhere := "boot/1/10", "boot/1/11"
	for _, c := range []struct {
		name     string
		prev, me registry.Incarnation
		by       uint64
		want     bool
	}{
		{"restart on its own directory", registry.Incarnation{N: 4, Dir: here}, registry.Incarnation{N: 5, Dir: here}, 4, true},
		{"a copy of the directory", registry.Incarnation{N: 4, Dir: elsewhere}, registry.Incarnation{N: 5, Dir: here}, 4, false},
		{"another incarnation registered between", registry.Incarnation{N: 4, Dir: here}, registry.Incarnation{N: 5, Dir: here}, 3, false},
		{"a record of this incarnation", registry.Incarnation{N: 4, Dir: here}, registry.Incarnation{N: 5, Dir: here}, 5, false},
		{"a record before incarnations", registry.Incarnation{}, registry.Incarnation{N: 1, Dir: here}, 0, false},
		{"a host without a boot id", registry.Incarnation{N: 4}, registry.Incarnation{N: 5}, 4, false},
	} {
		n := &Node{lock: &dirLock{}, inc: c.me, prevInc: c.prev}
		if got := n.resumable(c.by); got != c.want {
			t.Errorf("%s: resumable = %v, want %v", c.name, got, c.want)
		}
	}
}

// holdAddr serves, on a closed node's data address, a gRPC health service
// that knows no incarnation (the start-up probe's "another process there"),
// until t ends: on a busy machine another test's listener could otherwise
// take the freed port and swallow the probe, and the restart would be
// refused as unable to tell (a suite run saw it once).
func holdAddr(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("holding %s, the closed node's address: %v", addr, err)
	}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(ln)
	t.Cleanup(g.Stop)
}
