package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

const clusterToken = "integration-secret"

// cluster is three `sluice serve` processes sharing one Kafka and one name.
type cluster struct {
	t         *testing.T
	name      string
	brokers   string
	nodes     map[string]*proc
	tokenFile string
	extra     []string // every node's extra flags
}

func startCluster(t *testing.T, extra ...string) *cluster {
	return startClusterOn(t, strings.Join(kafkatest.Brokers(t), ","), extra...)
}

// startClusterOn starts the three nodes against the given brokers. The
// tests place partitions themselves: the nodes rebalance only if extra
// says --rebalance (failover stays automatic, the binary's default).
func startClusterOn(t *testing.T, brokers string, extra ...string) *cluster {
	name := kafkatest.ClusterName(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(clusterToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--rebalance") }) {
		extra = append(extra, "--rebalance=false")
	}
	c := &cluster{t: t, name: name, brokers: brokers, nodes: map[string]*proc{}, tokenFile: tokenFile, extra: extra}
	for _, id := range []string{"n1", "n2", "n3"} {
		// n1 comes first: it gives the new cluster its partitions.
		c.addNode(id)
	}
	return c
}

// addNode starts node id in the cluster, and waits until it serves.
func (c *cluster) addNode(id string) *proc {
	p := newProcArgs(c.t, c.t.TempDir(), append([]string{"--brokers", c.brokers, "--cluster", c.name, "--node-id", id, "--control-token-file", c.tokenFile, "--control-rate", "50"}, c.extra...)...)
	p.start()
	c.nodes[id] = p
	return p
}

func controlClient(t *testing.T, addr, token string) sluicev1.ControlClient {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(server.BearerToken(token)))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return sluicev1.NewControlClient(cc)
}

func (c *cluster) control(id string) sluicev1.ControlClient {
	return controlClient(c.t, c.nodes[id].control, clusterToken)
}

// move moves partition id to node and waits until every partition serves.
func (c *cluster) move(id uint32, node string) {
	c.t.Helper()
	ctx := context.Background()
	if _, err := c.control(node).MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: id, Node: node}); err != nil {
		c.t.Fatal(err)
	}
	c.waitServing(node)
}

func (c *cluster) waitServing(via string) {
	c.t.Helper()
	eventually(c.t, 60*time.Second, func() error {
		ls, err := c.control(via).ListPartitions(context.Background(), &sluicev1.ListPartitionsRequest{})
		if err != nil {
			return err
		}
		for _, p := range ls.Partitions {
			if p.State != "serving" {
				return fmt.Errorf("partition %d on %s is %q", p.Id, p.Owner, p.State)
			}
		}
		return nil
	})
}

func (c *cluster) addrs() []string {
	return []string{c.nodes["n1"].addr, c.nodes["n2"].addr, c.nodes["n3"].addr}
}

// Keys spread over partitions on three nodes; a client reads every key back
// through any entry node; a node asked for a key it does not own says who does.
func TestClusterServesOneKeyspace(t *testing.T) {
	c := startCluster(t)
	c.move(2, "n2")
	c.move(3, "n3")
	ctx := context.Background()
	w, err := client.New(c.nodes["n1"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var batch []client.Entry
	for i := 0; i < 300; i++ {
		batch = append(batch, client.Entry{Key: fmt.Append(nil, "key-", i), Value: fmt.Append(nil, "value-", i)})
	}
	if _, err := w.Upsert(ctx, batch...); err != nil { // split by partition over three nodes
		t.Fatal(err)
	}
	for _, entry := range c.addrs() {
		r, err := client.New(entry)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			v, found, err := r.Get(ctx, e.Key)
			if err != nil || !found || string(v.Data) != string(e.Value) {
				t.Fatalf("via %s: %s = %q %v %v", entry, e.Key, v.Data, found, err)
			}
		}
		r.Close()
	}
	ls, err := c.control("n3").ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	owners, keys := map[string]bool{}, int64(0)
	for _, p := range ls.Partitions {
		owners[p.Owner] = true
		keys += p.Keys
	}
	if len(owners) != 3 || keys != 300 {
		t.Fatalf("partitions %v: want owners on 3 nodes and 300 keys", ls.Partitions)
	}
	// A raw request to a node that does not own the key: BadNode names the owner.
	routes, err := dataClient(t, c.nodes["n1"].addr).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes.Routes {
		if rt.Node == "n1" {
			continue
		}
		key := keyIn(rt.From, rt.To, routes.Slots)
		_, err := dataClient(t, c.nodes["n1"].addr).Get(ctx, &sluicev1.GetRequest{Key: key})
		st := status.Convert(err)
		var bn *sluicev1.BadNode
		for _, d := range st.Details() {
			bn, _ = d.(*sluicev1.BadNode)
		}
		if st.Code() != codes.FailedPrecondition || bn == nil || bn.Addr != c.nodes[rt.Node].addr || bn.Node != rt.Node {
			t.Fatalf("key owned by %s asked of n1: %v %+v", rt.Node, err, bn)
		}
	}
}

func dataClient(t *testing.T, addr string) sluicev1.DataClient {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return sluicev1.NewDataClient(cc)
}

// Every bad control call gets its clear code and changes nothing in the registry.
func TestBadControlCallsChangeNothing(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	good := c.control("n2")
	before, err := good.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	u32 := func(v uint32) *uint32 { return &v }
	cases := []struct {
		name string
		call func() error
		code codes.Code
		want string
	}{
		{"no token", func() error {
			_, err := controlClient(t, c.nodes["n1"].control, "").ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
			return err
		}, codes.Unauthenticated, "bearer token"},
		{"wrong token", func() error {
			_, err := controlClient(t, c.nodes["n1"].control, "guess").RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: u32(1)})
			return err
		}, codes.Unauthenticated, "bearer token"},
		{"overlapping range", func() error {
			_, err := good.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 2, To: 6}})
			return err
		}, codes.InvalidArgument, "overlaps partition 1 [0,4)"},
		{"unknown partition", func() error {
			_, err := good.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: u32(99)})
			return err
		}, codes.NotFound, "unknown partition 99"},
		{"out-of-range slot", func() error {
			_, err := good.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 12, To: 20}})
			return err
		}, codes.InvalidArgument, "outside [0,16)"},
		{"move to an unknown node", func() error {
			_, err := good.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n9"})
			return err
		}, codes.InvalidArgument, `unknown node "n9"`},
	}
	for _, tc := range cases {
		st := status.Convert(tc.call())
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("%s: %v %q, want %v containing %q", tc.name, st.Code(), st.Message(), tc.code, tc.want)
		}
	}
	after, err := good.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range before.Partitions {
		before.Partitions[i].Keys, after.Partitions[i].Keys = 0, 0
	}
	if !proto.Equal(before, after) {
		t.Fatalf("a refused call changed the registry:\nbefore %v\nafter  %v", before, after)
	}
	// Past the rate limit (50/s, burst 50 here, for calls that may write;
	// read-only calls have ten times that budget): ResourceExhausted. The
	// burst is of adds of an empty range, refused whenever they get through.
	limited := 0
	for i := 0; i < 200; i++ {
		if status.Code(func() error {
			_, err := good.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 5, To: 5}})
			return err
		}()) == codes.ResourceExhausted {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("200 calls in a burst were never rate-limited")
	}
}

// Move a partition between nodes under continuous writes: no acknowledged
// write is lost, none is applied twice, and the client sees no error.
func TestMoveUnderWrites(t *testing.T) {
	c := startCluster(t)
	n := movesUnderWrites(t, c, 300*time.Millisecond, 30*time.Second)
	t.Logf("%d writes acknowledged across 3 moves of partition 1, all present once", n)
}

// movesUnderWrites moves partition 1 to n2, n3 and back to n1, pause apart,
// while four writers upsert unique keys (each call given callTimeout), then
// checks that every acknowledged key is there, written once, and returns
// how many were. A writer that sees an error, not a retry, fails the test.
func movesUnderWrites(t *testing.T, c *cluster, pause, callTimeout time.Duration) int {
	t.Helper()
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acked := make(chan string, 100000)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := client.New(c.addrs()...)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				callCtx, cancel := context.WithTimeout(ctx, callTimeout)
				_, err := cl.Upsert(callCtx, client.Entry{Key: []byte(key), Value: []byte(key)})
				cancel()
				if err != nil {
					t.Errorf("writer %d saw an error, not a retry: %v", w, err)
					return
				}
				acked <- key
			}
		}()
	}
	for _, hop := range []string{"n2", "n3", "n1"} {
		time.Sleep(pause)
		c.move(1, hop)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(acked)
	r, err := client.New(c.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for key := range acked {
		n++
		v, found, err := r.Get(ctx, []byte(key))
		if err != nil || !found || string(v.Data) != key {
			t.Fatalf("acknowledged %s: %q %v %v", key, v.Data, found, err)
		}
		if v.Version != 1 {
			t.Fatalf("%s written once has version %d: applied twice", key, v.Version)
		}
	}
	return n
}

// A zombie: pause the owner (SIGSTOP) while writes flow into it, move its
// partition, resume it. What it had in flight fails: the new owner fenced it.
// Every write it acknowledged is in the new owner's state; every write it
// refused (not applied) is absent.
func TestZombieOwnerCannotAcknowledge(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	n1 := c.nodes["n1"]
	routes, err := dataClient(t, n1.addr).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var r1 *sluicev1.Route
	for _, rt := range routes.Routes {
		if rt.Partition == 1 {
			r1 = rt
		}
	}
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
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Append(nil, "z", w, "-", i)
				if !inRange(k, r1, routes.Slots) {
					continue
				}
				callCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
				_, err := dc.Upsert(callCtx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: k, Value: k}}})
				cancel()
				mu.Lock()
				results = append(results, result{k, err})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	n1.signal(syscall.SIGSTOP) // mid-flight: requests in its inbox, a transaction open
	if _, err := c.control("n2").MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		ls, err := c.control("n2").NodeStatus(ctx, &sluicev1.NodeStatusRequest{})
		if err != nil {
			return err
		}
		for _, p := range ls.Partitions {
			if p.Id == 1 && p.State == "serving" {
				return nil
			}
		}
		return fmt.Errorf("partition 1 not serving on n2 yet")
	})
	n1.signal(syscall.SIGCONT)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	cl, err := client.New(c.nodes["n2"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[codes.Code]int{}
	for _, r := range results {
		code := status.Code(r.err)
		seen[code]++
		v, found, err := cl.Get(ctx, r.key)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case code == codes.OK && (!found || string(v.Data) != string(r.key)):
			t.Errorf("%s was acknowledged by the old owner but is not in the new owner's state", r.key)
		case code != codes.OK && code != codes.Unknown && found:
			t.Errorf("%s was refused (%v) but applied", r.key, r.err)
		}
	}
	if seen[codes.Unavailable]+seen[codes.FailedPrecondition] == 0 {
		t.Fatalf("no write was in flight at the pause: %v", seen)
	}
	t.Logf("writes to the paused owner ended with %v", seen)
}

// A node killed and restarted rebuilds its partitions from the registry and
// its disk, and the cluster serves again.
func TestRestartedNodeRebuilds(t *testing.T) {
	c := startCluster(t)
	c.move(2, "n2")
	ctx := context.Background()
	cl, err := client.New(c.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var batch []client.Entry
	for i := 0; i < 200; i++ {
		batch = append(batch, client.Entry{Key: fmt.Append(nil, "r", i), Value: fmt.Append(nil, i)})
	}
	if _, err := cl.Upsert(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	c.nodes["n2"].kill()
	c.nodes["n2"].start()
	c.waitServing("n1")
	for _, e := range batch {
		if v, found, err := cl.Get(ctx, e.Key); err != nil || !found || string(v.Data) != string(e.Value) {
			t.Fatalf("%s after n2 restarted: %q %v %v", e.Key, v.Data, found, err)
		}
	}
}

func inRange(key []byte, r *sluicev1.Route, slots int32) bool {
	s := keyspace.Slot(key, slots)
	return s >= r.From && s < r.To
}

// keyIn finds a key whose slot is in [from, to).
func keyIn(from, to, slots int32) []byte {
	for i := 0; ; i++ {
		k := fmt.Append(nil, "probe-", i)
		if s := keyspace.Slot(k, slots); s >= from && s < to {
			return k
		}
	}
}

// A partition removed and added again over the same slots (after moves raised
// its epoch) serves again, with a higher epoch; the slots' data, kept in the
// changelog, comes back with it.
func TestRemoveAndAddAgain(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	cl, err := client.New(c.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	routes, err := dataClient(t, c.nodes["n1"].addr).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	key := keyIn(0, 4, routes.Slots) // partition 1's slots
	c.move(1, "n2")
	c.move(1, "n3")
	// Written at the latest epoch: a re-added partition with a lower one would
	// take these records for a newer owner's and never serve.
	if _, err := cl.Upsert(ctx, client.Entry{Key: key, Value: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	ctl := c.control("n1")
	if _, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Range: &sluicev1.SlotRange{From: 0, To: 4}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dataClient(t, c.nodes["n1"].addr).Get(ctx, &sluicev1.GetRequest{Key: key}); status.Code(err) != codes.Unavailable {
		t.Fatalf("a key of removed slots: %v, want Unavailable", err)
	}
	added, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 0, To: 4}, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if added.Epoch <= 3 {
		t.Fatalf("the re-added partition has epoch %d: not above the moves' epochs", added.Epoch)
	}
	c.waitServing("n1")
	if v, found, err := cl.Get(ctx, key); err != nil || !found || string(v.Data) != "kept" {
		t.Fatalf("after remove and add: %q %v %v", v.Data, found, err)
	}
}

// A deposed owner never answers a read from the state the new owner moved
// past: pause the owner, move the partition, write a new value through the
// new owner, resume the old one with reads already queued in its socket.
func TestZombieReadsAreNotStale(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	n1 := c.nodes["n1"]
	routes, err := dataClient(t, n1.addr).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	key := keyIn(0, 4, routes.Slots) // partition 1, on n1
	old := dataClient(t, n1.addr)
	if _, err := old.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: key, Value: []byte("old")}}}); err != nil {
		t.Fatal(err)
	}
	n1.signal(syscall.SIGSTOP)
	if _, err := c.control("n2").MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.nodes["n2"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Upsert(ctx, client.Entry{Key: key, Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	reads := make(chan string, 32)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			resp, err := old.Get(callCtx, &sluicev1.GetRequest{Key: key})
			if err != nil {
				reads <- status.Code(err).String()
				return
			}
			reads <- string(resp.Value)
		}()
	}
	time.Sleep(200 * time.Millisecond) // the reads wait in the paused node's socket
	n1.signal(syscall.SIGCONT)
	wg.Wait()
	close(reads)
	seen := map[string]int{}
	for r := range reads {
		seen[r]++
	}
	if seen["old"] > 0 {
		t.Fatalf("the deposed owner answered %d reads with the value the new owner replaced: %v", seen["old"], seen)
	}
	t.Logf("reads at the deposed owner: %v", seen)
}
