package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/anishathalye/porcupine"

	"github.com/sluicedb/sluice/internal/kvmodel"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Three nodes, kill -9 of the one that owns every partition (and leads the
// membership group), never restarted: once its session times out, every
// partition serves again on the other two (the one with a standby promoted
// on it), every acknowledged write is there, and the history of clients
// doing gets, puts, compare-and-sets and removes throughout is
// linearizable (porcupine). Logs the failover window
// per partition: the kill to the first write its new owner acknowledged.
func TestKilledNodeFailsOver(t *testing.T) {
	c := startCluster(t, "--session-timeout", "6s")
	ctx := context.Background()
	ctl := c.control("n2")
	// Partition 3 [8,12) comes back with a standby (on n2 or n3).
	if _, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptrU32(3)}); err != nil {
		t.Fatal(err)
	}
	added, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 8, To: 12}, Node: "n1", Standbys: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.waitServing("n2")
	ls, err := ctl.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Writes go to the owner the routing table of a live node names, asked
	// again after every error. (The Go client refreshes its table only on a
	// BadNode, which a dead owner never sends: it kept calling the killed
	// node for a partition.)
	routesVia := dataClient(t, c.nodes["n2"].addr)
	conns := map[string]sluicev1.DataClient{}
	for _, id := range []string{"n1", "n2", "n3"} {
		conns[c.nodes[id].addr] = dataClient(t, c.nodes[id].addr)
	}
	owner := func(part uint32) (sluicev1.DataClient, error) {
		rs, err := routesVia.GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
		if err != nil {
			return nil, err
		}
		for _, r := range rs.Routes {
			if r.Partition == part {
				if dc, ok := conns[r.Addr]; ok {
					return dc, nil
				}
			}
		}
		return nil, fmt.Errorf("no route to partition %d", part)
	}

	type writer struct {
		mu       sync.Mutex
		key      []byte
		acked    int
		killed   time.Time
		firstNew time.Duration // the kill to the first acknowledgement after it
		lastErr  error
	}
	writers := map[uint32]*writer{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt() // before the client closes, also on a failure
	for _, p := range ls.Partitions {
		if p.Owner != "n1" {
			t.Fatalf("partition %d on %s before the kill", p.Id, p.Owner)
		}
		w := &writer{key: keyIn(p.Range.From, p.Range.To, ls.Slots)}
		writers[p.Id] = w
		part := p.Id
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				dc, err := owner(part)
				if err == nil {
					callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
					_, err = dc.Upsert(callCtx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: w.key, Value: []byte(strconv.Itoa(seq))}}})
					cancel()
				}
				if err != nil {
					w.mu.Lock()
					w.lastErr = err
					w.mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				w.mu.Lock()
				w.acked = seq
				if !w.killed.IsZero() && w.firstNew == 0 {
					w.firstNew = time.Since(w.killed)
				}
				w.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	// Beside them, clients of the Go client (which finds the new owners by
	// itself) doing gets, puts, compare-and-sets and removes on keys of
	// every partition, recorded for porcupine.
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	h := &kvmodel.History{}
	historyClients(t, c.addrs(), 4, 24, keys, h, stop, &wg)
	eventually(t, 60*time.Second, func() error {
		for id, w := range writers {
			w.mu.Lock()
			a := w.acked
			w.mu.Unlock()
			if a == 0 {
				return fmt.Errorf("partition %d has no acknowledged write yet", id)
			}
		}
		return nil
	})
	enough := func(n int) func() error {
		return func() error {
			if got := len(h.Operations()); got < n {
				return fmt.Errorf("the clients completed %d operations, waiting for %d", got, n)
			}
			return nil
		}
	}
	eventually(t, 90*time.Second, enough(100))
	if err := c.nodes["n1"].killAlive(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, w := range writers {
		w.mu.Lock()
		w.killed = killed
		w.mu.Unlock()
	}
	eventually(t, 90*time.Second, func() error {
		for id, w := range writers {
			w.mu.Lock()
			f, last := w.firstNew, w.lastErr
			w.mu.Unlock()
			if f == 0 {
				return fmt.Errorf("partition %d has acknowledged nothing since the kill (last error: %v)", id, last)
			}
		}
		return nil
	})
	eventually(t, 90*time.Second, enough(len(h.Operations())+100)) // and after it
	halt()
	after, err := ctl.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range after.Partitions {
		w := writers[p.Id]
		if p.Owner == "n1" {
			t.Fatalf("partition %d still on the killed n1", p.Id)
		}
		if p.Id == added.Id && p.Owner != added.Standbys[0] {
			t.Errorf("partition %d went to %s, not its standby %s", p.Id, p.Owner, added.Standbys[0])
		}
		dc, err := owner(p.Id)
		if err != nil {
			t.Fatal(err)
		}
		v, err := dc.Get(ctx, &sluicev1.GetRequest{Key: w.key})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := strconv.Atoi(string(v.Value))
		if !v.Found || got < w.acked {
			t.Errorf("partition %d: %s holds %q, but %d was acknowledged", p.Id, w.key, v.Value, w.acked)
		}
		t.Logf("partition %d now on %s: failover window %v (--session-timeout 6s)", p.Id, p.Owner, w.firstNew.Round(time.Millisecond))
	}
	// The clients' history, with a final read of every key, is
	// linearizable: nothing acknowledged lost, nothing stale read.
	finalReads(t, []string{c.nodes["n2"].addr, c.nodes["n3"].addr}, keys, h)
	ops := h.Operations()
	res := porcupine.CheckOperationsTimeout(kvmodel.Model, ops, 60*time.Second)
	t.Logf("clients: %d operations, %v", len(ops), res)
	if res == porcupine.Illegal {
		t.Error("the clients' history across the failover is not linearizable")
		explain(t, 0, ops)
	}
	if len(ops) < 200 {
		t.Errorf("only %d operations: the run tested too little", len(ops))
	}
}

func ptrU32(v uint32) *uint32 { return &v }

// A node paused (SIGSTOP) past its session timeout while it owns every
// partition (and decides placement): its partitions fail over; once
// resumed it acknowledges nothing the new owners do not hold (Kafka fenced
// its transactions), and it takes its place in the group again.
func TestPausedNodeIsFencedAndRejoins(t *testing.T) {
	c := startCluster(t, "--session-timeout", "6s")
	ctx := context.Background()
	n1 := c.nodes["n1"]
	type result struct {
		key []byte
		err error
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	dc := dataClient(t, n1.addr)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Append(nil, "p", w, "-", i)
				callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := dc.Upsert(callCtx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: k, Value: k}}})
				cancel()
				mu.Lock()
				results = append(results, result{k, err})
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	generations := func() int {
		b, _ := os.ReadFile(n1.logPath)
		return strings.Count(string(b), `"members":["n1","n2","n3"],"time"`)
	}
	n1.signal(syscall.SIGSTOP)
	paused := time.Now()
	eventually(t, 90*time.Second, func() error {
		ls, err := c.control("n2").ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
		if err != nil {
			return err
		}
		for _, p := range ls.Partitions {
			if p.Owner == "n1" || p.State != "serving" {
				return fmt.Errorf("partition %d on %s is %q", p.Id, p.Owner, p.State)
			}
		}
		return nil
	})
	t.Logf("every partition served by n2 and n3 %v after n1 was paused", time.Since(paused).Round(time.Millisecond))
	before := generations()
	n1.signal(syscall.SIGCONT)
	eventually(t, 60*time.Second, func() error {
		if generations() <= before {
			return fmt.Errorf("n1 has not seen a generation with all three nodes since it resumed")
		}
		return nil
	})
	close(stop)
	wg.Wait()

	routesVia := dataClient(t, c.nodes["n2"].addr)
	rs, err := routesVia.GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	conns := map[string]sluicev1.DataClient{}
	for _, r := range results {
		code := status.Code(r.err)
		seen[code.String()]++
		var owner string
		for _, rt := range rs.Routes {
			if inRange(r.key, rt, rs.Slots) {
				owner = rt.Addr
			}
		}
		if conns[owner] == nil {
			conns[owner] = dataClient(t, owner)
		}
		got, err := conns[owner].Get(ctx, &sluicev1.GetRequest{Key: r.key})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case code == codes.OK && (!got.Found || string(got.Value) != string(r.key)):
			t.Errorf("%s was acknowledged by the paused node but is not on its partition's new owner", r.key)
		case code != codes.OK && code != codes.Unknown && got.Found:
			t.Errorf("%s was refused (%v) but applied", r.key, r.err)
		}
	}
	t.Logf("writes to the paused node ended with %v", seen)
}
