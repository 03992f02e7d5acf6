package node

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/server"
)

// The broker's smallest session timeout: the tests wait it out.
const testSession = MinSessionTimeout

// failoverCluster starts n1 (first, owning every partition), n2 and n3, all
// --failover auto, and gives n1 partitions with and without a standby:
// 1 [0,8) none, 2 removed, 3 [8,12) one standby, 4 [12,16) none.
func failoverCluster(t testing.TB, session time.Duration) map[string]*testNode {
	cluster := kafkatest.ClusterName(t)
	nodes := map[string]*testNode{}
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes[id] = startNode(t, Config{NodeID: id, Cluster: cluster, Partitions: 2, Failover: FailoverAuto, SessionTimeout: session})
	}
	ctx := context.Background()
	cc, err := grpc.NewClient(nodes["n1"].ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctl := sluicev1.NewControlClient(cc)
	call := func(what string, f func() error) {
		await(t, what, func() bool { return f() == nil })
	}
	call("remove partition 2", func() error {
		_, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptr(uint32(2))})
		return err
	})
	call("add [8,12) with a standby", func() error {
		_, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 8, To: 12}, Node: "n1", Standbys: 1})
		return err
	})
	call("add [12,16)", func() error {
		_, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 12, To: 16}, Node: "n1"})
		return err
	})
	for _, n := range nodes {
		await(t, n.cfg.NodeID+" ready", n.Ready)
	}
	return nodes
}

// awaitAcked waits until every writer had a write acknowledged.
func awaitAcked(t testing.TB, what string, writers map[uint32]*writer) {
	t.Helper()
	await(t, what, func() bool {
		for _, w := range writers {
			w.mu.Lock()
			a := w.acked
			w.mu.Unlock()
			if a == 0 {
				return false
			}
		}
		return true
	})
}

// await polls cond until it holds, failing after a generous deadline.
func await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 90 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writer writes 1, 2, 3, ... to one key, always to the owner the registry
// names, and keeps what was acknowledged and when.
type writer struct {
	key      []byte
	mu       sync.Mutex
	acked    int
	firstAck map[string]time.Time // by node: the first acknowledgement after since
	since    time.Time
}

func (w *writer) run(ctx context.Context, view func() *registry.View, part uint32, nodes map[string]*testNode) {
	for seq := 1; ctx.Err() == nil; seq++ {
		owner := view().Partitions[part].Owner
		n, ok := nodes[owner]
		if !ok {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.data.Upsert(cctx, upsert(string(w.key), strconv.Itoa(seq)))
		cancel()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		now := time.Now()
		w.mu.Lock()
		w.acked = seq
		if !w.since.IsZero() && now.After(w.since) {
			if _, ok := w.firstAck[owner]; !ok {
				w.firstAck[owner] = now
			}
		}
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// killAndHeal runs writers on every partition, closes n1 without leaving
// the group (its session must time out), waits until every partition has
// acknowledged a write on a live owner, checks every acknowledged write is
// there, and returns the failover windows: n1's stop to the first write
// its new owner acknowledged, per partition.
func killAndHeal(t testing.TB, nodes map[string]*testNode) map[uint32]time.Duration {
	view := nodes["n2"].registry.View
	before := view()
	var parts []uint32
	for id, p := range before.Partitions {
		if p.Owner != "n1" {
			t.Fatalf("partition %d on %s before the kill", id, p.Owner)
		}
		parts = append(parts, id)
	}
	slices.Sort(parts)
	live := map[string]*testNode{"n1": nodes["n1"], "n2": nodes["n2"], "n3": nodes["n3"]}
	var mu sync.Mutex
	routes := func() map[string]*testNode { mu.Lock(); defer mu.Unlock(); return live }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writers := map[uint32]*writer{}
	var wg sync.WaitGroup
	for _, id := range parts {
		r := before.Partitions[id].Range
		w := &writer{key: keyInSlots(nodes["n2"].Slots(), r.From, r.To, "fo"), firstAck: map[string]time.Time{}}
		writers[id] = w
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, view, id, routes()) }()
	}
	awaitAcked(t, "a write acknowledged on every partition", writers)
	killed := time.Now()
	for _, w := range writers {
		w.mu.Lock()
		w.since = killed
		w.mu.Unlock()
	}
	nodes["n1"].Close()
	closed := time.Since(killed)
	var decided atomic.Int64
	go func() {
		for ctx.Err() == nil {
			moved := true
			for _, id := range parts {
				moved = moved && view().Partitions[id].Owner != "n1"
			}
			if moved {
				decided.Store(int64(time.Since(killed)))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var gens []string // n2's generations after the kill, and when
	var gensMu sync.Mutex
	go func() {
		last := int32(-1)
		for ctx.Err() == nil {
			if s, ok := nodes["n2"].member.Session(); ok && s.Generation != last {
				last = s.Generation
				gensMu.Lock()
				gens = append(gens, fmt.Sprintf("gen %d %v decider %s at %v", s.Generation, s.Members, s.Decider, time.Since(killed).Round(time.Millisecond)))
				gensMu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	windows := map[uint32]time.Duration{}
	await(t, "every partition acknowledging on a live owner", func() bool {
		for _, id := range parts {
			w := writers[id]
			w.mu.Lock()
			for owner, at := range w.firstAck {
				if owner != "n1" {
					windows[id] = at.Sub(killed)
				}
			}
			w.mu.Unlock()
		}
		return len(windows) == len(parts)
	})
	cancel()
	wg.Wait()
	gensMu.Lock()
	t.Logf("n1 closed in %v; every partition reassigned in the registry %v after the kill; n2 saw %v", closed.Round(time.Millisecond), time.Duration(decided.Load()).Round(time.Millisecond), gens)
	gensMu.Unlock()
	after := view()
	for _, id := range parts {
		p := after.Partitions[id]
		if p.Owner == "n1" || p.Owner == "" || p.Epoch <= before.Partitions[id].Epoch {
			t.Fatalf("partition %d after the kill: %+v", id, p)
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
	return windows
}

// Three nodes, one closed without leaving the group: once its session has
// timed out its partitions serve again on the others, promoted on a standby
// where they had one, else moved to the least loaded, with every
// acknowledged write present.
func TestFailoverAfterANodeDies(t *testing.T) {
	nodes := failoverCluster(t, testSession)
	standby := nodes["n2"].registry.View().Partitions[3].Standbys
	windows := killAndHeal(t, nodes)
	after := nodes["n2"].registry.View()
	if got := after.Partitions[3].Owner; len(standby) != 1 || got != standby[0] {
		t.Fatalf("partition 3 went to %s, want its standby %v", got, standby)
	}
	// 1 and 4 (no standby) went to the least loaded: not both on the one
	// that took 3.
	if after.Partitions[1].Owner == after.Partitions[4].Owner {
		t.Fatalf("1 and 4 both on %s", after.Partitions[1].Owner)
	}
	// The decider counted its decisions by cause.
	counted := map[string]float64{}
	for _, id := range []string{"n2", "n3"} {
		for _, cause := range []string{registry.CausePromote, registry.CauseMove} {
			var m dto.Metric
			if err := nodes[id].failoverMoves.WithLabelValues(cause).Write(&m); err != nil {
				t.Fatal(err)
			}
			counted[cause] += m.GetCounter().GetValue()
		}
	}
	if counted[registry.CausePromote] != 1 || counted[registry.CauseMove] != 2 {
		t.Fatalf("sluice_failover_moves_total: %v, want 1 promotion and 2 moves", counted)
	}
	for id, w := range windows {
		t.Logf("partition %d (now on %s, %s): failover window %v (session timeout %v)", id, after.Partitions[id].Owner,
			map[bool]string{true: "promoted standby", false: "moved"}[id == 3], w.Round(time.Millisecond), testSession)
	}
}

// A node that restarts within the session timeout keeps its partitions:
// it never left the group, so nothing moves.
func TestQuickRestartKeepsPartitions(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	dir := t.TempDir()
	cfg := Config{Cluster: cluster, Partitions: 2, Failover: FailoverAuto, SessionTimeout: testSession}
	c1, c2 := cfg, cfg
	c1.NodeID, c1.DataDir = "n1", dir
	c2.NodeID = "n2"
	n1 := startNode(t, c1)
	n2 := startNode(t, c2)
	eventually(t, "both in one generation", func() bool {
		s, ok := n2.member.Session()
		return ok && slices.Equal(s.Members, []string{"n1", "n2"})
	})
	before := n2.registry.View().Partitions
	stopped := time.Now()
	n1.Close()
	// A restart that takes half the session timeout: long enough for the
	// group to rebalance without n1, had n1 left it.
	time.Sleep(testSession / 2)
	n1 = startNode(t, c1)
	t.Logf("n1 stopped, then served again %v later (%v of it waiting)", time.Since(stopped).Round(time.Millisecond), testSession/2)
	time.Sleep(testSession + 2*time.Second) // past the old session's timeout
	after := n2.registry.View().Partitions
	for id, p := range before {
		if !after[id].Equal(p) {
			t.Fatalf("partition %d changed across a quick restart: %+v → %+v", id, p, after[id])
		}
	}
	if !n1.Ready() {
		t.Fatal("n1 does not serve its partitions after its restart")
	}
}

// --failover manual: a node that dies keeps its partitions (today's
// behaviour); an operator moves them.
func TestManualFailoverMovesNothing(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	n1 := startNode(t, Config{NodeID: "n1", Cluster: cluster, Partitions: 2, SessionTimeout: testSession})
	n2 := startNode(t, Config{NodeID: "n2", Cluster: cluster, SessionTimeout: testSession})
	eventually(t, "both in one generation", func() bool {
		s, ok := n2.member.Session()
		return ok && slices.Equal(s.Members, []string{"n1", "n2"}) && s.Decider == ""
	})
	n1.Close()
	eventually(t, "n1 out of the group", func() bool {
		s, ok := n2.member.Session()
		return ok && slices.Equal(s.Members, []string{"n2"})
	})
	time.Sleep(2 * time.Second)
	for id, p := range n2.registry.View().Partitions {
		if p.Owner != "n1" {
			t.Fatalf("partition %d moved to %s with --failover manual", id, p.Owner)
		}
	}
}

func TestFailoverConfigRefusesBadValues(t *testing.T) {
	for _, c := range []Config{{Failover: "sometimes"}, {SessionTimeout: time.Second}, {SessionTimeout: time.Hour}} {
		c.ControlToken = "t"
		c.DataDir = t.TempDir()
		if err := c.setDefaults(); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
}

// BenchmarkFailoverWindow measures the failover window (a node's stop to
// the first write its partitions' new owners acknowledge) of
// TestFailoverAfterANodeDies's cluster, one run a b.N: median and max of a
// promoted standby (partition 3) and of a move (1 and 4), at the default
// session timeout.
//
//	KAFKA_BROKERS=127.0.0.1:19092 go test -run XXX -bench FailoverWindow -benchtime 5x ./node
func BenchmarkFailoverWindow(b *testing.B) {
	var promoted, moved []time.Duration
	for range b.N {
		nodes := failoverCluster(b, DefaultSessionTimeout)
		for id, w := range killAndHeal(b, nodes) {
			if id == 3 {
				promoted = append(promoted, w)
			} else {
				moved = append(moved, w)
			}
		}
		for _, n := range nodes {
			n.conn.Close()
			n.Close()
		}
	}
	b.ReportMetric(median(promoted).Seconds(), "promoted-median-s")
	b.ReportMetric(slices.Max(promoted).Seconds(), "promoted-max-s")
	b.ReportMetric(median(moved).Seconds(), "moved-median-s")
	b.ReportMetric(slices.Max(moved).Seconds(), "moved-max-s")
	b.Logf("failover windows over %d runs: promoted %v, moved %v", b.N, promoted, moved)
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}
