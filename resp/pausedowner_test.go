package resp_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// freezer is a TCP proxy in front of a node's data port, advertised as the
// node's address: frozen, it passes no byte either way, as a node stopped
// with SIGSTOP (its Kafka heartbeats go on: no failover comes).
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
	to     string
}

func newFreezer(t *testing.T) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, thaw: make(chan struct{})}
	t.Cleanup(func() { f.unfreeze(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *freezer) serve(c net.Conn) {
	defer c.Close()
	f.mu.Lock()
	to := f.to
	f.mu.Unlock()
	up, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer up.Close()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			f.wait()
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	pipe(c, up)
}

func (f *freezer) wait() {
	f.mu.Lock()
	frozen, thaw := f.frozen, f.thaw
	f.mu.Unlock()
	if frozen {
		<-thaw
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		f.frozen, f.thaw = true, make(chan struct{})
	}
}

func (f *freezer) unfreeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thaw)
	}
}

// An MGET through one node over keys of three owners, one of which does not
// answer (frozen): the keys of the owners that answer are answered, only
// the frozen owner's fail, each with an error that says nothing of writes.
// Before, one GetMany carried every forwarded key and its timeout failed
// them all (an outside tester: n2's keys failed while n3 was SIGSTOPped).
func TestAnMGETOverAnOwnerThatDoesNotAnswerFailsOnlyItsKeys(t *testing.T) {
	cluster := startCluster3(t)
	n1, fz := cluster.n1, cluster.fz
	ctx := context.Background()
	at1 := newClient(t, n1)
	k1, k2, k3 := keyIn(t, n1, 1, "one"), keyIn(t, n1, 2, "two"), keyIn(t, n1, 3, "three")
	for _, k := range []string{k1, k2, k3} {
		if err := at1.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	fz.freeze()
	cmd := at1.MGet(ctx, k1, k2, k3, k2)
	got, err := cmd.Result()
	fz.unfreeze()
	if err != nil {
		t.Fatalf("MGET: %v", err)
	}
	if got[0] != "v-"+k1 || got[1] != "v-"+k2 || got[3] != "v-"+k2 {
		t.Errorf("MGET with n3 frozen: %q, want the values of n1's and n2's keys (%s, %s) answered", got, k1, k2)
	}
	e, ok := got[2].(error)
	if !ok {
		t.Fatalf("MGET with n3 frozen answered n3's key %s with %v, want an error", k3, got[2])
	}
	if strings.Contains(e.Error(), "write") {
		t.Errorf("a read's error speaks of writes: %v", e)
	}
	if got, err := at1.Get(ctx, k3).Result(); err != nil || got != "v-"+k3 {
		t.Fatalf("GET %s once n3 answers again: %q %v", k3, got, err)
	}
}

type cluster3 struct {
	n1, n2, n3 *node.Node
	fz         *freezer
}

// startCluster3 starts three nodes of a new cluster of three partitions,
// partition i on node ni; n3's data port is reached through a freezer.
func startCluster3(t *testing.T) cluster3 {
	t.Helper()
	c := cluster3{fz: newFreezer(t)}
	name := kafkatest.ClusterName(t)
	c.n1 = startNode(t, node.Config{Cluster: name, NodeID: "n1", Partitions: 3})
	c.n2 = startNode(t, node.Config{Cluster: name, NodeID: "n2", Partitions: 3})
	free, err := net.Listen("tcp", "127.0.0.1:0") // a port for n3's data plane, behind the freezer
	if err != nil {
		t.Fatal(err)
	}
	c.fz.mu.Lock()
	c.fz.to = free.Addr().String()
	c.fz.mu.Unlock()
	free.Close()
	c.n3 = startNode(t, node.Config{Cluster: name, NodeID: "n3", Partitions: 3, DataAddr: c.fz.to, AdvertiseAddr: c.fz.ln.Addr().String()})
	nodes := []*node.Node{c.n1, c.n2, c.n3}
	ctl := controlOf(t, c.n1)
	for id, to := range map[uint32]string{2: "n2", 3: "n3"} {
		waitFor(t, 60*time.Second, fmt.Sprintf("partition %d moved to %s", id, to), func() bool {
			_, err := ctl.MovePartition(context.Background(), &sluicev1.MovePartitionRequest{Id: id, Node: to})
			return err == nil || strings.Contains(err.Error(), "already")
		})
	}
	waitFor(t, 120*time.Second, "partitions 1, 2, 3 served by n1, n2, n3 in every node's view", func() bool {
		for _, n := range nodes {
			v := n.Registry().View()
			if v.Partitions[1].Owner != "n1" || v.Partitions[2].Owner != "n2" || v.Partitions[3].Owner != "n3" {
				return false
			}
		}
		return c.n2.Ready() && c.n3.Ready()
	})
	return c
}
