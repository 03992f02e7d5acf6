package node

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
)

// A node that joins a cluster whose partitions all live on one node
// receives half of them, each first as a standby and then as its owner,
// while writers keep writing to every partition: every acknowledged write
// is on the partition's owner afterwards, every partition serves, and the
// moves are shown in the registry (Placed) and counted by cause.
func TestAJoiningNodeReceivesPartitions(t *testing.T) {
	cfg := Config{Cluster: kafkatest.ClusterName(t), Failover: FailoverAuto, Rebalance: true, MaxConcurrentMoves: 1, SessionTimeout: testSession}
	c1, c2 := cfg, cfg
	c1.NodeID, c1.Partitions = "n1", 4
	c2.NodeID = "n2"
	n1 := startNode(t, c1)
	view := n1.registry.View
	var parts []uint32
	for id := range view().Partitions {
		parts = append(parts, id)
	}
	slices.Sort(parts)
	if len(parts) != 4 {
		t.Fatalf("n1 started with %d partitions, want 4", len(parts))
	}
	// Writers start before n2 joins; n2 is in their routes once started.
	nodes := map[string]*testNode{"n1": n1}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writers := map[uint32]*writer{}
	var wg sync.WaitGroup
	for _, id := range parts {
		r := view().Partitions[id].Range
		w := &writer{key: keyInSlots(n1.Slots(), r.From, r.To, "rb"), firstAck: map[string]time.Time{}}
		writers[id] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				routes := map[string]*testNode{}
				for k, v := range nodes {
					routes[k] = v
				}
				mu.Unlock()
				// run until n2 joins, then again with it in the routes.
				wctx, wcancel := context.WithCancel(ctx)
				go func() {
					for wctx.Err() == nil {
						mu.Lock()
						joined := len(nodes) > len(routes)
						mu.Unlock()
						if joined {
							wcancel()
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
				w.run(wctx, view, id, routes)
				wcancel()
			}
		}()
	}
	awaitAcked(t, "a write acknowledged on every partition", writers)
	joined := time.Now()
	n2 := startNode(t, c2)
	mu.Lock()
	nodes["n2"] = n2
	mu.Unlock()
	var balanced time.Duration
	sawWarmup := false
	await(t, "two partitions on each node, both serving", func() bool {
		load := map[string]int{}
		for _, p := range view().Partitions {
			load[p.Owner]++
			if p.Moving != nil {
				sawWarmup = sawWarmup || (p.Moving.To == "n2" && p.HasStandby("n2") && p.Owner == "n1")
				return false
			}
		}
		if load["n1"] != 2 || load["n2"] != 2 || !n1.Ready() || !n2.Ready() {
			return false
		}
		balanced = time.Since(joined)
		return true
	})
	// Every partition takes writes on its new owner.
	for _, id := range parts {
		w := writers[id]
		w.mu.Lock()
		w.acked, w.since, w.firstAck = 0, time.Now(), map[string]time.Time{}
		w.mu.Unlock()
	}
	awaitAcked(t, "a write acknowledged on every partition after the rebalance", writers)
	cancel()
	wg.Wait()
	if !sawWarmup {
		t.Error("no move was seen warming up a standby on n2 before it took ownership")
	}
	after := view()
	for _, id := range parts {
		p := after.Partitions[id]
		if p.Owner == "n2" && p.Placed != registry.CauseRebalance+" from n1" {
			t.Errorf("partition %d moved to n2 placed %q", id, p.Placed)
		}
		got, err := nodes[p.Owner].data.Get(context.Background(), &sluicev1.GetRequest{Key: writers[id].key})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := strconv.Atoi(string(got.Value))
		if v < writers[id].acked {
			t.Fatalf("partition %d: %s holds %d, but %d was acknowledged", id, writers[id].key, v, writers[id].acked)
		}
	}
	var m dto.Metric
	var moved float64
	for _, n := range []*testNode{n1, n2} {
		if err := n.failoverMoves.WithLabelValues(registry.CauseRebalance).Write(&m); err != nil {
			t.Fatal(err)
		}
		moved += m.GetCounter().GetValue()
	}
	if moved != 2 {
		t.Errorf("sluice_failover_moves_total{cause=rebalance} = %v, want 2", moved)
	}
	t.Logf("balanced %v after n2 started (two moves, one at a time)", balanced.Round(time.Millisecond))
}

// The decider stopped while a rebalance is under way (its moves are in the
// registry): the next decider finishes or stops each move, and every
// partition ends with exactly one owner, a live one, that serves it.
func TestTheDeciderDiesDuringARebalance(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	// n1 owns every partition and never decides (manual); n2, the auto node
	// with the smallest id, decides; n3 takes over the deciding.
	n1 := startNode(t, Config{NodeID: "n1", Cluster: cluster, Partitions: 4, SessionTimeout: testSession})
	auto := Config{Cluster: cluster, Failover: FailoverAuto, Rebalance: true, MaxConcurrentMoves: 2, SessionTimeout: testSession}
	c2, c3 := auto, auto
	c2.NodeID, c3.NodeID = "n2", "n3"
	n3 := startNode(t, c3)
	eventually(t, "n1 and n3 in one generation", func() bool {
		s, ok := n3.member.Session()
		return ok && slices.Equal(s.Members, []string{"n1", "n3"})
	})
	view := n1.registry.View
	n2 := startNode(t, c2)
	// Stop n2 the moment it deciding shows: a move under way.
	var moving registry.Partition
	await(t, "a move under way with n2 deciding", func() bool {
		s, ok := n2.member.Session()
		if !ok || s.Decider != "n2" {
			return false
		}
		for _, p := range view().Partitions {
			if p.Moving != nil {
				moving = p
				return true
			}
		}
		return false
	})
	n2.Close() // without leaving the group: its session times out
	t.Logf("n2 stopped while partition %d moved from %s to %s", moving.ID, moving.Owner, moving.Moving.To)
	await(t, "n3 deciding, no move under way, two partitions each on n1 and n3, both serving", func() bool {
		s, ok := n3.member.Session()
		if !ok || s.Decider != "n3" {
			return false
		}
		load := map[string]int{}
		for _, p := range view().Partitions {
			if p.Moving != nil {
				return false
			}
			load[p.Owner]++
		}
		return load["n1"] == 2 && load["n3"] == 2 && n1.Ready() && n3.Ready()
	})
	// Exactly one owner each: the node the registry names holds it as its
	// owner, the other does not (once each has reconciled with the
	// registry: a node may read the last move a moment after n1 does).
	var wrong []string
	defer func() {
		if t.Failed() {
			t.Logf("owners at the end: %v", wrong)
		}
	}()
	await(t, "each partition held as owner by the node the registry names, and only by it", func() bool {
		wrong = nil
		for id, p := range view().Partitions {
			for name, n := range map[string]*testNode{"n1": n1, "n3": n3} {
				n.mu.RLock()
				h, ok := n.parts[id]
				owns := ok && h.p != nil
				n.mu.RUnlock()
				if owns != (p.Owner == name) {
					wrong = append(wrong, fmt.Sprintf("partition %d (owner %s, epoch %d): %s holds it as owner: %v", id, p.Owner, p.Epoch, name, owns))
				}
			}
		}
		return len(wrong) == 0
	})
}
