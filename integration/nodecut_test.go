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
	fresh          time.Time // a client made after the move was served every key
	rejoined       time.Time // the node was joined again
}

// freshClient is the history's id of the client made during a fault.
const freshClient = 80

// running is the operations of the clients that run throughout the test.
func running(ops []porcupine.Operation) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		if op.ClientId < freshClient {
			out = append(out, op)
		}
	}
	return out
}

// freshClientServed: a client made now, while f.victim is cut off, reads
// and writes every key of the moved partitions (recorded in
// the history, for porcupine).
func (nc *nodeCluster) freshClientServed(f *nodeFault, h *kvmodel.History) {
	t := nc.t
	t.Helper()
	cl, err := client.New(nc.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, k := range f.keys {
		eventually(t, 2*time.Minute, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			start := time.Now()
			v, found, err := cl.Get(ctx, []byte(k))
			if err != nil {
				return fmt.Errorf("a new client's get of %s with %s cut off: %v", k, f.victim, err)
			}
			h.Add(freshClient, kvmodel.Input{Op: "get", Key: k}, start, kvmodel.Output{OK: found, Value: string(v.Data), Version: v.Version}, time.Now())
			in := kvmodel.Input{Op: "put", Key: k, Value: fmt.Sprintf("fresh-%d-%d", start.UnixNano(), i)}
			start = time.Now()
			res, err := cl.Upsert(ctx, client.Entry{Key: []byte(k), Value: []byte(in.Value)})
			if err != nil {
				if !certainlyNotApplied(err) {
					h.Add(freshClient, in, start, kvmodel.Output{Unknown: true}, time.Now())
				}
				return fmt.Errorf("a new client's put of %s with %s cut off: %v", k, f.victim, err)
			}
			h.Add(freshClient, in, start, kvmodel.Output{Version: res[0].Version}, time.Now())
			return nil
		})
	}
	f.fresh = time.Now()
}

// Three nodes in containers (nodecontainer_test.go) on a three-broker Kafka
// (kafkacluster_test.go) under six clients doing gets, puts, compare-and-sets
// and removes, while, twice each, the node owning three of the four
// partitions is cut off from every broker, and then its partitions' new
// owner is cut off from its clients only (Docker network disconnect). The
// nodes run with --failover manual (automatic failover has its own tests,
// failover_test.go): after each cut an operator moves the
// node's partitions to another node (`sluice partitions move`). A prober
// sends gets and puts straight to the cut-off node all along: cut off from
// the brokers, it acknowledges no write called after the cut and answers no
// read called a lease after it. The new owner takes over while the node is
// still cut off: from the brokers, the running clients find it; from its
// clients, a client made then is served (the running ones find it once the
// node answers again: see freshClientServed). Joined again, the node refuses
// (BadNode naming the new owner) and never answers. The history (clients,
// prober and final reads) must be linearizable: nothing acknowledged lost,
// nothing stale read. Each fault's unavailability window is logged: the
// longest over the node's keys from the disconnect to the first
// acknowledged write by a running client called after it, and the part of
// it after the operator's move.
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

	// The windows: to the running clients, and to a client made after the
	// operator's move.
	var fresh []porcupine.Operation
	for _, op := range ops {
		if op.ClientId == freshClient {
			fresh = append(fresh, op)
		}
	}
	toRunning, toFresh := map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, f := range faults {
		w, err := unavailability(running(ops), f.keys, f.at)
		if err != nil {
			t.Errorf("%s (%s): %v", f.kind, f.victim, err)
			continue
		}
		n, err := unavailability(fresh, f.keys, f.at)
		if err != nil {
			t.Errorf("%s (%s): %v", f.kind, f.victim, err)
			continue
		}
		since := func(t time.Time) time.Duration { return t.Sub(f.at).Round(time.Millisecond) }
		t.Logf("%s (%s, partitions %v to %s): unavailable %v to the running clients, %v to a client made after the move; from the cut: move called at %v, the new owner serving at %v, the new client served at %v, the node joined again at %v",
			f.kind, f.victim, f.parts, f.target, w, n, since(f.moved), since(f.served), since(f.fresh), since(f.rejoined))
		toRunning[f.kind] = append(toRunning[f.kind], w)
		toFresh[f.kind] = append(toFresh[f.kind], n)
	}
	for _, kind := range []string{cutBrokers, cutClients} {
		r, n := toRunning[kind], toFresh[kind]
		if len(r) == 0 || len(n) == 0 {
			continue
		}
		slices.Sort(r)
		slices.Sort(n)
		t.Logf("unavailability, %s: to a client made after the move median %v, max %v %v; to the running clients median %v, max %v %v",
			kind, n[len(n)/2], n[len(n)-1], n, r[len(r)/2], r[len(r)-1], r)
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
	// The new owner took over while the node is still cut off: a client
	// made now is served every key at once (its route refresh, refused by
	// a node cut off from the brokers, goes to another node). The running
	// clients may not find it before the node answers again: calls to a
	// node cut off from its clients hang on their connection (no
	// keepalive), and a node cut off from the brokers holding a
	// transaction's batch the Kafka client cannot fail (it may have been
	// written) keeps its partitions serving, their calls waiting; a call
	// that ends in its deadline does not refresh the client's routes.
	nc.freshClientServed(f, h)

	if f.kind == cutBrokers {
		nc.reconnectBrokers(f.victim)
	} else {
		nc.reconnectClients(f.victim)
	}
	f.rejoined = time.Now()
	// Joined again, the node refuses, and the running clients find the
	// new owner.
	eventually(t, 2*time.Minute, func() error {
		_, err := unavailability(running(h.Operations()), f.keys, f.at)
		return err
	})
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
