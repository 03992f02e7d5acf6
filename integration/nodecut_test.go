package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kvmodel"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// nodeLease is the nodes' read lease (--lease): a partition answers reads of
// committed values for this long after its last commit began.
const nodeLease = time.Second

const (
	cutBrokers = "a node cut off from every broker"
	cutClients = "a node cut off from its clients"
)

// nodeFault is one node cut off, its partitions moved by an operator, and
// the node joined again.
type nodeFault struct {
	kind           string
	victim, target string
	parts          []uint32
	keys           []string  // the keys of parts
	at             time.Time // the disconnect was called
	cut            time.Time // the disconnect returned: the cut is in effect
	moved          time.Time // the operator's first move was called
	served         time.Time // the new owner serves every moved partition
	rejoined       time.Time // the node was joined again
}

// Three nodes in containers (nodecontainer_test.go) on a three-broker Kafka
// (kafkacluster_test.go) under six clients doing gets, puts, compare-and-sets
// and removes, while, twice each, the node owning three of the four
// partitions is cut off from every broker, and then its partitions' new
// owner is cut off from its clients only (Docker network disconnect). Sluice
// has no automatic failover yet: after each cut an operator moves the
// node's partitions to another node (`sluice partitions move`), and the node
// is joined again. A prober sends gets and puts straight to the cut-off node
// all along: a node cut off from the brokers acknowledges no write called
// after the cut and answers no read called a lease after it; once joined
// again, either node refuses (BadNode naming the new owner) and never
// answers. The history (clients, prober and final reads) must be
// linearizable: nothing acknowledged lost, nothing stale read. Each fault's
// unavailability window is logged: the longest over the node's keys from
// the disconnect to the first acknowledged write called after it, and the
// part of it after the operator's move.
func TestNodeCutOffFromBrokersOrClients(t *testing.T) {
	kc := startKafkaCluster(t)
	nc := startNodeCluster(t, kc)
	nc.waitServing("n1", 1, 2, 3, 4)
	nc.move("n3", "n3", 3) // n1: 1, 2, 4; n3: 3 (its keys stay served throughout)

	keysOf := nodeCutKeys(t, nc)
	var keys []string
	for _, p := range []uint32{1, 2, 3, 4} {
		keys = append(keys, keysOf[p]...)
	}
	h := &kvmodel.History{}
	seed := uint64(time.Now().UnixNano())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := 0; id < 6; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			cl, err := client.New(nc.addrs()...)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			versions := map[string]uint64{}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				do(context.Background(), cl, id, n, rng, keys, h, versions)
			}
		}()
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopClients()

	time.Sleep(3 * time.Second) // writes before the first fault
	var faults []*nodeFault
	for round := 0; round < 2; round++ {
		for _, f := range []*nodeFault{
			{kind: cutBrokers, victim: "n1", target: "n2"},
			{kind: cutClients, victim: "n2", target: "n1"},
		} {
			f.parts = nc.owned(f.target, f.victim)
			if len(f.parts) != 3 {
				t.Fatalf("%s owns partitions %v, want 3 of them", f.victim, f.parts)
			}
			for _, p := range f.parts {
				f.keys = append(f.keys, keysOf[p]...)
			}
			nc.nodeFault(f, h)
			faults = append(faults, f)
			time.Sleep(3 * time.Second) // writes between faults
		}
	}
	stopClients()

	// The final reads, through the new owners.
	final, err := client.New(nc.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer final.Close()
	for _, k := range keys {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, found, err := final.Get(ctx, []byte(k))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		h.Add(100, kvmodel.Input{Op: "get", Key: k}, start, kvmodel.Output{OK: found, Value: string(v.Data), Version: v.Version}, time.Now())
	}
	ops := h.Operations()
	acked := 0
	for _, op := range ops {
		if !op.Output.(kvmodel.Output).Unknown {
			acked++
		}
	}
	res := porcupine.CheckOperationsTimeout(kvmodel.Model, ops, 60*time.Second)
	t.Logf("%d operations (%d with a known outcome): %v", len(ops), acked, res)
	if res == porcupine.Illegal {
		t.Errorf("the history is not linearizable (seed %d)", seed)
		explain(t, seed, ops)
	}
	if acked < 50 {
		t.Errorf("only %d operations completed: the run tested too little", acked)
	}

	fromCut, fromMove := map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, f := range faults {
		w, err := unavailability(ops, f.keys, f.at)
		if err != nil {
			t.Errorf("%s (%s): %v", f.kind, f.victim, err)
			continue
		}
		m, _ := unavailability(ops, f.keys, f.moved)
		since := func(t time.Time) time.Duration { return t.Sub(f.at).Round(time.Millisecond) }
		t.Logf("%s (%s, partitions %v to %s): unavailable %v from the cut, of which %v after the move (called at %v, the new owner serving at %v, the node joined again at %v)",
			f.kind, f.victim, f.parts, f.target, w, m, since(f.moved), since(f.served), since(f.rejoined))
		fromCut[f.kind] = append(fromCut[f.kind], w)
		fromMove[f.kind] = append(fromMove[f.kind], m)
	}
	for _, kind := range []string{cutBrokers, cutClients} {
		for _, ws := range [][]time.Duration{fromCut[kind], fromMove[kind]} {
			slices.Sort(ws)
		}
		if len(fromCut[kind]) == 0 {
			continue
		}
		c, m := fromCut[kind], fromMove[kind]
		t.Logf("unavailability, %s: from the cut median %v, max %v %v; after the move median %v, max %v %v",
			kind, c[len(c)/2], c[len(c)-1], c, m[len(m)/2], m[len(m)-1], m)
	}
}

// nodeFault cuts f.victim off, checks through the prober that it stops
// answering, has the operator move its partitions to f.target, joins it
// again and checks that it refuses, then stops the prober.
func (nc *nodeCluster) nodeFault(f *nodeFault, h *kvmodel.History) {
	t := nc.t
	t.Helper()
	pr := startProber(t, nc.nodes[f.victim].addr(), f.keys, h)
	defer pr.stop()
	time.Sleep(time.Second) // the prober's answers before the cut

	f.at = time.Now()
	if f.kind == cutBrokers {
		nc.cutFromBrokers(f.victim)
	} else {
		nc.cutFromClients(f.victim)
	}
	f.cut = time.Now()
	// Stopped answering: cut off from the brokers, a read called a lease
	// after the cut and a write called after it failed; from its clients,
	// any call after the cut.
	readsFrom := f.cut
	if f.kind == cutBrokers {
		readsFrom = f.cut.Add(nodeLease)
	}
	eventually(t, 2*time.Minute, func() error {
		if !pr.failedSince("get", readsFrom) || !pr.failedSince("put", f.cut) {
			return fmt.Errorf("%s: no failed get called after %v and put called after %v yet", f.victim, readsFrom.Format(time.StampMilli), f.cut.Format(time.StampMilli))
		}
		return nil
	})
	// The operator's move, through the new owner's control port (the
	// cut-off node's is out of reach or cannot write the registry).
	f.moved = time.Now()
	nc.move(f.target, f.target, f.parts...)
	f.served = time.Now()
	// The new owner took over while the node is still cut off: every key
	// of the moved partitions takes a write called after the cut.
	eventually(t, 2*time.Minute, func() error {
		_, err := unavailability(h.Operations(), f.keys, f.at)
		return err
	})

	if f.kind == cutBrokers {
		nc.reconnectBrokers(f.victim)
	} else {
		nc.reconnectClients(f.victim)
	}
	f.rejoined = time.Now()
	// Joined again: it refuses the moved partitions' keys, naming the new
	// owner.
	dc := dataClient(t, nc.nodes[f.victim].addr())
	eventually(t, 2*time.Minute, func() error {
		for _, k := range f.keys {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := dc.Get(ctx, &sluicev1.GetRequest{Key: []byte(k)})
			cancel()
			if bn := badNode(err); bn == nil || bn.Node != f.target {
				return fmt.Errorf("%s joined again, a get of %s: %v (want FailedPrecondition, BadNode naming %s)", f.victim, k, err, f.target)
			}
		}
		return nil
	})
	pr.stop()
	// What the prober saw: nothing acknowledged by a node cut off from the
	// brokers after the cut, no read answered a lease after it, and nothing
	// answered once the partitions moved.
	for _, r := range pr.results() {
		if r.err != nil {
			continue
		}
		switch {
		case r.op == "put" && r.call.After(f.cut):
			t.Errorf("%s (%s) acknowledged a put of %s called %v after the cut", f.kind, f.victim, r.key, r.call.Sub(f.cut))
		case r.op == "get" && r.call.After(readsFrom):
			t.Errorf("%s (%s) answered a get of %s called %v after the cut", f.kind, f.victim, r.key, r.call.Sub(f.cut))
		}
	}
	t.Logf("%s (%s): the prober's calls %v", f.kind, f.victim, pr.summary(f.cut))
}

func badNode(err error) *sluicev1.BadNode {
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition {
		return nil
	}
	for _, d := range st.Details() {
		if bn, ok := d.(*sluicev1.BadNode); ok {
			return bn
		}
	}
	return nil
}

// nodeCutKeys finds two keys in each of the four partitions.
func nodeCutKeys(t *testing.T, nc *nodeCluster) map[uint32][]string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	routes, err := dataClient(t, nc.nodes["n1"].addr()).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[uint32][]string{}
	for i := 0; len(keys) < len(routes.Routes) || slices.ContainsFunc(routes.Routes, func(r *sluicev1.Route) bool { return len(keys[r.Partition]) < 2 }); i++ {
		k := fmt.Sprintf("k%d", i)
		for _, r := range routes.Routes {
			if inRange([]byte(k), r, routes.Slots) && len(keys[r.Partition]) < 2 {
				keys[r.Partition] = append(keys[r.Partition], k)
			}
		}
	}
	return keys
}
