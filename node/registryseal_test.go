package node

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/topics"
)

// trap is an address an attacker listens on: it counts the connections it
// gets and the bearer tokens sent to it.
type trap struct {
	addr   string
	conns  atomic.Int64
	mu     sync.Mutex
	tokens []string
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newTrap(t *testing.T) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		tr.mu.Lock()
		tr.tokens = append(tr.tokens, md.Get("authorization")...)
		tr.mu.Unlock()
		return nil
	}))
	go srv.Serve(countingListener{ln, &tr.conns})
	t.Cleanup(srv.Stop)
	return tr
}

func (tr *trap) caught() (int64, []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.conns.Load(), append([]string(nil), tr.tokens...)
}

// produceRegistry writes recs straight to the node's registry topic, as any
// client of its broker can (kcat -P -t <cluster>.registry -k node/n1), and
// waits until the node's registry has read past them.
func produceRegistry(t *testing.T, n *testNode, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(n.kafkaOpts(), kgo.DefaultProduceTopic(n.topics.Registry()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := n.registry.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// Issue 22, item 9: one unauthenticated write to the registry topic
// re-announcing n1 with another control and data address. The node ignores
// it: the operator's next `sluice partitions ls` sends the address nothing
// (not a connection, not the token), and clients are still told n1's real
// data address.
func TestForgedNodeRecordGetsNoToken(t *testing.T) {
	n := startNode(t, Config{ControlRate: 1000})
	evil := newTrap(t)
	forged := registry.PutNode(registry.Node{ID: n.cfg.NodeID, DataAddr: evil.addr, ControlAddr: evil.addr})
	produceRegistry(t, n, &kgo.Record{Key: []byte(forged.Key), Value: forged.Value})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := sluicev1.NewControlClient(dial(t, n.ControlAddr(), "test-token")).ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if conns, tokens := evil.caught(); conns != 0 || len(tokens) != 0 {
		t.Fatalf("the forged control address got %d connections and the tokens %q", conns, tokens)
	}
	for _, ni := range resp.Nodes {
		if ni.Id == n.cfg.NodeID && (ni.DataAddr != n.DataAddr() || ni.ControlAddr != n.ControlAddr()) {
			t.Fatalf("the registry names n1 at data %s control %s, want %s and %s", ni.DataAddr, ni.ControlAddr, n.DataAddr(), n.ControlAddr())
		}
	}
	for _, p := range n.table.Load().Partitions() {
		if p.Addr != n.DataAddr() {
			t.Fatalf("clients are routed to %s for partition %d, want %s", p.Addr, p.ID, n.DataAddr())
		}
	}
	if errs := n.registry.Errs(); errs != 1 {
		t.Fatalf("the registry skipped %d records, want the forged one", errs)
	}
}

// A node never forwards a control call to itself: even a sealed record
// naming another control address for this node (an operator's mistake) gets
// nothing from a `partitions ls` on the node; it answers for itself.
func TestNodeNeverCallsItselfThroughTheRegistry(t *testing.T) {
	n := startNode(t, Config{ControlRate: 1000})
	elsewhere := newTrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.registry.Update(ctx, func(*registry.View) ([]registry.Mutation, error) {
		return []registry.Mutation{registry.PutNode(registry.Node{ID: n.cfg.NodeID, DataAddr: n.DataAddr(), ControlAddr: elsewhere.addr})}, nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := sluicev1.NewControlClient(dial(t, n.ControlAddr(), "test-token")).ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if conns, tokens := elsewhere.caught(); conns != 0 || len(tokens) != 0 {
		t.Fatalf("the node called itself at %s: %d connections, tokens %q", elsewhere.addr, conns, tokens)
	}
	for _, p := range resp.Partitions {
		if p.State == "unknown" {
			t.Fatalf("partition %d's state is unknown: the node did not answer for itself", p.Id)
		}
	}
}

// A registry written before records were sealed is not taken for an empty
// one (the node would cut a new cluster's partitions over the old
// changelog): the start is refused, naming --registry-adopt-unsealed; with
// it the node takes the old records, seals them, and later starts need it
// no more.
func TestUnsealedRegistryNeedsAdopting(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tp := topics.Names{Cluster: cluster}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(tp.Registry()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := topics.EnsureAll(ctx, cl, tp, 16, 1); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i, r := range keyspace.Split(16, 2) {
		m := registry.PutPartition(registry.Partition{ID: uint32(i + 1), Range: r, Owner: "n1", Epoch: 5})
		recs = append(recs, &kgo.Record{Key: []byte(m.Key), Value: m.Value})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{Brokers: brokers, Cluster: cluster, DataDir: dir, ControlToken: "test-token", DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-"}
	if n, err := Start(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--registry-adopt-unsealed") {
		if err == nil {
			n.Close()
		}
		t.Fatalf("a node on a registry of unsealed records: %v, want refused naming --registry-adopt-unsealed", err)
	}
	adopt := cfg
	adopt.RegistryAdoptUnsealed = true
	n := openNode(t, adopt)
	if ps := n.registry.View().Partitions; len(ps) != 2 || ps[1].Epoch != 5 {
		t.Fatalf("adopted partitions %+v, want the two of epoch 5", ps)
	}
	n.conn.Close()
	n.Close()
	n = startNode(t, cfg)
	if ps := n.registry.View().Partitions; len(ps) != 2 || ps[2].Epoch != 5 {
		t.Fatalf("after the reseal partitions %+v", ps)
	}
}
