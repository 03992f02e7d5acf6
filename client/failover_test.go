package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// fakeNode serves the routes it is told and applies every write.
type fakeNode struct {
	sluicev1.UnimplementedDataServer
	addr   string
	routes atomic.Pointer[sluicev1.Routes]
	writes atomic.Int64
	stop   func()
}

func (s *fakeNode) GetRoutes(context.Context, *sluicev1.GetRoutesRequest) (*sluicev1.Routes, error) {
	return s.routes.Load(), nil
}

func (s *fakeNode) Upsert(_ context.Context, req *sluicev1.UpsertRequest) (*sluicev1.UpsertResponse, error) {
	s.writes.Add(1)
	return &sluicev1.UpsertResponse{Results: make([]*sluicev1.WriteResult, len(req.Entries))}, nil
}

func startFakeNode(t *testing.T) *fakeNode {
	s := &fakeNode{}
	serveFake(t, s, s)
	return s
}

// serveFake serves srv, whose fakeNode is n, on a local port.
func serveFake(t *testing.T, n *fakeNode, srv sluicev1.DataServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	g := grpc.NewServer()
	sluicev1.RegisterDataServer(g, srv)
	go g.Serve(ln)
	n.stop = g.Stop
	t.Cleanup(g.Stop)
}

func ownedBy(n *fakeNode) *sluicev1.Routes {
	return &sluicev1.Routes{Slots: 16, Routes: []*sluicev1.Route{{Partition: 1, From: 0, To: 16, Epoch: 1, Node: "n", Addr: n.addr}}}
}

// Issue 24: a node dies and its partition fails over to another. A dead
// owner never answers BadNode, so before, the client kept the old routes
// and sent every later write to the dead node (an integration test's
// writers gave up after 90 s). A call that fails UNAVAILABLE marks the
// routes stale: the next call fetches them again, from any node the client
// knows (here the dead node was the only entry: the survivor is known from
// the table), and goes to the new owner.
func TestRoutesAreFetchedAgainAfterAnOwnerDies(t *testing.T) {
	a, b := startFakeNode(t), startFakeNode(t)
	b.routes.Store(&sluicev1.Routes{Slots: 16, Routes: []*sluicev1.Route{{Partition: 1, From: 0, To: 16, Epoch: 1, Node: "a", Addr: a.addr, StandbyAddrs: []string{b.addr}}}})
	a.routes.Store(b.routes.Load())
	c, err := Dial([]string{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); err != nil || a.writes.Load() != 1 {
		t.Fatalf("the first write: %v, %d on a", err, a.writes.Load())
	}
	a.stop()                   // a dies
	b.routes.Store(ownedBy(b)) // and its partition fails over to b
	_, err = c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v2")})
	t.Logf("the write sent as a died: %v", err) // if it failed, it may have been applied: not retried
	if err == nil {
		b.writes.Add(-1)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v3")}); err != nil {
			t.Fatalf("write %d after the failover: %v (the client still sends to the dead node)", i, err)
		}
	}
	if b.writes.Load() != 3 {
		t.Fatalf("%d writes reached the new owner, want 3", b.writes.Load())
	}
}

// A call on a closed client fails with ErrClosed; before, it panicked
// (assignment to entry in nil map).
func TestCallsAfterCloseFail(t *testing.T) {
	a := startFakeNode(t)
	a.routes.Store(ownedBy(a))
	c, err := Dial([]string{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Upsert after Close: %v, want ErrClosed", err)
	}
	if _, _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}

// frozenNode takes TCP connections and never answers on them: a node
// stopped with SIGSTOP (the kernel still accepts for it).
func frozenNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A write to an owner that died, called before its partition failed over,
// waits for the failover within its deadline: the connection to the dead
// owner is refused, so the write was never sent and is tried again on
// routes fetched again. Before, it failed at once with "cannot connect to
// …: connection refused" (an outside tester: hundreds of such failures in
// the 9 s of a failover, with --timeout 20s).
func TestAWriteToADeadOwnerWaitsForItsFailover(t *testing.T) {
	a, b := startFakeNode(t), startFakeNode(t)
	b.routes.Store(ownedBy(a))
	c, err := Dial([]string{b.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); err != nil || a.writes.Load() != 1 {
		t.Fatalf("the first write: %v, %d on a", err, a.writes.Load())
	}
	a.stop()
	// The client saw its connection to a close (a write sent on it as it
	// closed may have been applied, and fails).
	cc, _ := c.conn(a.addr)
	for cc.GetState() == connectivity.Ready {
		time.Sleep(time.Millisecond)
	}
	go func() {
		time.Sleep(time.Second) // the failover is decided
		b.routes.Store(ownedBy(b))
	}()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v2")}); err != nil {
		t.Fatalf("a write called before the failover: %v", err)
	}
	if b.writes.Load() != 1 {
		t.Fatalf("%d writes on the new owner, want 1", b.writes.Load())
	}
}

// A call to an owner that is frozen (its port takes the connection, the
// handshake never ends) goes to the new owner once the partition failed
// over, within its deadline. Before, it waited gRPC's 20 s connect timeout
// and then failed UNAVAILABLE.
func TestACallToAFrozenOwnerGoesToItsNewOwner(t *testing.T) {
	frozen := frozenNode(t)
	b := startFakeNode(t)
	b.routes.Store(&sluicev1.Routes{Slots: 16, Routes: []*sluicev1.Route{{Partition: 1, From: 0, To: 16, Epoch: 1, Node: "a", Addr: frozen}}})
	c, err := Dial([]string{b.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		time.Sleep(time.Second) // the failover is decided
		b.routes.Store(ownedBy(b))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("a write to a frozen owner, failed over: %v", err)
	}
	if b.writes.Load() != 1 {
		t.Fatalf("%d writes on the new owner, want 1", b.writes.Load())
	}
}

// watchNode is a fakeNode whose Watch sends one change named after the
// node and keeps the stream open.
type watchNode struct{ *fakeNode }

func (s *watchNode) Watch(_ *sluicev1.WatchRequest, st sluicev1.Data_WatchServer) error {
	if err := st.Send(&sluicev1.WatchResponse{Session: &sluicev1.Session{Offsets: map[int32]int64{0: 1}},
		Events: []*sluicev1.WatchEvent{{Key: []byte(s.addr)}}}); err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

func startWatchNode(t *testing.T) *watchNode {
	s := &watchNode{fakeNode: &fakeNode{}}
	serveFake(t, s.fakeNode, s)
	return s
}

// A watch whose node stops resumes through another node of the cluster,
// known from the routes (a new user watched through n2, stopped it, and
// the CLI tried n2 for ever); a watch through a node that cannot be reached
// fails at once, naming it (it retried for ever).
func TestAWatchResumesThroughAnotherNode(t *testing.T) {
	a, b := startWatchNode(t), startWatchNode(t)
	routes := &sluicev1.Routes{Slots: 16, Routes: []*sluicev1.Route{{Partition: 1, From: 0, To: 16, Epoch: 1, Node: "b", Addr: b.addr}}}
	a.routes.Store(routes)
	b.routes.Store(routes)
	c, err := Dial([]string{a.addr}) // only a is given
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seen []string
	err = c.Watch(ctx, nil, WatchOptions{}, func(wb WatchBatch) error {
		for _, ch := range wb.Changes {
			seen = append(seen, string(ch.Key))
		}
		if len(seen) == 1 {
			go a.stop() // a stops while it serves the watch
		}
		if len(seen) == 2 {
			return errors.New("done")
		}
		return nil
	})
	if err == nil || err.Error() != "done" || len(seen) != 2 || seen[0] != a.addr || seen[1] != b.addr {
		t.Fatalf("watch ended with %v having seen %v, want a change from %s then one from %s", err, seen, a.addr, b.addr)
	}

	dead := frozenNode(t) // any address that never answers; and one that refuses:
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()
	for _, addr := range []string{refused, dead} {
		c, err := Dial([]string{addr})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Watch(ctx, nil, WatchOptions{}, func(WatchBatch) error { return nil })
		c.Close()
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.Addr != addr {
			t.Fatalf("a watch through %s: %v, want a ConnectError naming it", addr, err)
		}
	}
}

// refusingNode refuses GetRoutes (its registry cannot be read: its Kafka
// hangs) and answers every write with a BadNode naming the owner, which
// its own table still knows.
type refusingNode struct {
	fakeNode
	owner string
}

func (s *refusingNode) GetRoutes(context.Context, *sluicev1.GetRoutesRequest) (*sluicev1.Routes, error) {
	return nil, status.Error(codes.Unavailable, "the registry could not be read within 2s; ask another node")
}

func (s *refusingNode) Upsert(context.Context, *sluicev1.UpsertRequest) (*sluicev1.UpsertResponse, error) {
	st, err := status.New(codes.FailedPrecondition, "not the owner").WithDetails(&sluicev1.BadNode{Slot: 1, Partition: 1, Epoch: 1, Node: "owner", Addr: s.owner})
	if err != nil {
		return nil, err
	}
	return nil, st.Err()
}

// A client whose only entry node cannot give it the routes (found from
// outside: a RESP port forwards through a client of its own node only, and
// with that node's Kafka hung every forwarded write timed out) follows the
// owner a BadNode names: it asks that node for the routes.
func TestAClientFindsTheOwnerABadNodeNames(t *testing.T) {
	owner := startFakeNode(t)
	owner.routes.Store(ownedBy(owner))
	entry := &refusingNode{owner: owner.addr}
	serveFake(t, &entry.fakeNode, entry)
	c, err := Dial([]string{entry.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); err != nil || owner.writes.Load() != 1 {
		t.Fatalf("a write through an entry that refuses the routes: %v, %d written at the owner", err, owner.writes.Load())
	}
}
