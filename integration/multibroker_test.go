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

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kvmodel"
	"github.com/sluicedb/sluice/topics"
)

// brokerFault is one broker killed (SIGKILL) at a moment and restarted.
type brokerFault struct {
	kind   string // "a follower's broker" or "the leaders' broker"
	broker int
	at     time.Time
}

// Three nodes on a three-broker Kafka (replication factor 3,
// min.insync.replicas=2, in containers: kafkacluster_test.go) under six
// clients doing gets, puts, compare-and-sets and removes, while brokers are
// killed with SIGKILL for 15 s and restarted: twice the broker leading the fewest
// changelog partitions, twice the one leading the most (killed during the
// partitions' transactions: the writers never stop). The history must be
// linearizable (nothing acknowledged lost, no stale read), every key must
// take writes again after each kill, and the final reads must equal a
// replay of the changelog. Each fault's unavailability window is logged:
// per key, from the kill to the first acknowledged write that started after
// it; the fault's window is the largest over the keys.
func TestThreeBrokersLoseABroker(t *testing.T) {
	kc := startKafkaCluster(t)
	c := startClusterOn(t, kc.Addrs(), "--replication-factor", "3")
	c.waitServing("n1")
	c.move(2, "n2")
	c.move(3, "n3")
	topic := topics.Names{Cluster: c.name}.Changelog()

	keys := []string{"a", "b", "c", "d", "e", "f"}
	h := &kvmodel.History{}
	seed := uint64(time.Now().UnixNano())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := 0; id < 6; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			cl, err := client.New(c.addrs()...)
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
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	time.Sleep(3 * time.Second) // writes before the first fault
	var faults []brokerFault
	for round := 0; round < 2; round++ {
		for _, kind := range []string{"a follower's broker", "the leaders' broker"} {
			var led map[int]int
			eventually(t, 2*time.Minute, func() (err error) {
				led, err = kc.leaders(topic)
				return err
			})
			victim := 0
			for b := 1; b < 3; b++ {
				if kind == "the leaders' broker" && led[b] > led[victim] || kind != "the leaders' broker" && led[b] < led[victim] {
					victim = b
				}
			}
			f := brokerFault{kind: kind, broker: victim, at: time.Now()}
			kc.kill(victim)
			// Down longer than broker.session.timeout.ms (9 s): the
			// controller fences it, moves its leaderships and shrinks the
			// in-sync replicas to the two others (min.insync.replicas=2).
			time.Sleep(15 * time.Second)
			kc.restart(victim, c.name)
			t.Logf("killed broker %d (%s: it led %d of the changelog's partitions), restarted after %v",
				victim+1, kind, led[victim], time.Since(f.at).Round(100*time.Millisecond))
			faults = append(faults, f)
			// Writes between faults: until every key took an acknowledged
			// write called after this kill (the window is measured from the
			// kill, and a broker that led most partitions takes its
			// restart and more), at most 2 minutes, then 3 s more.
			eventually(t, 2*time.Minute, func() error {
				_, err := unavailability(h.Operations(), keys, f.at)
				return err
			})
			time.Sleep(3 * time.Second)
		}
	}
	close(stop)
	wg.Wait()

	// The final reads, then the checks.
	final, err := client.New(c.addrs()...)
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

	byKind := map[string][]time.Duration{}
	for _, f := range faults {
		w, err := unavailability(ops, keys, f.at)
		if err != nil {
			t.Errorf("broker %d killed at %v (%s): %v", f.broker+1, f.at.Format(time.StampMilli), f.kind, err)
			continue
		}
		byKind[f.kind] = append(byKind[f.kind], w)
	}
	for kind, ws := range byKind {
		slices.Sort(ws)
		t.Logf("unavailability after killing %s: median %v, max %v (%d kills: %v)", kind, ws[len(ws)/2], ws[len(ws)-1], len(ws), ws)
	}
}

// unavailability is, for a fault at `at`, the largest over the keys of the
// time from `at` to the return of the first acknowledged write of that key
// called after `at`.
func unavailability(ops []porcupine.Operation, keys []string, at time.Time) (time.Duration, error) {
	var worst time.Duration
	for _, k := range keys {
		first := int64(-1)
		for _, op := range ops {
			in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
			if in.Key != k || in.Op == "get" || out.Unknown || (in.Op == "cas" && !out.OK) || op.Call < at.UnixNano() {
				continue
			}
			if first < 0 || op.Return < first {
				first = op.Return
			}
		}
		if first < 0 {
			return 0, fmt.Errorf("no acknowledged write of key %q called after the kill", k)
		}
		worst = max(worst, time.Duration(first-at.UnixNano()))
	}
	return worst.Round(time.Millisecond), nil
}
