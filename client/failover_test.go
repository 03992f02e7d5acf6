package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

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
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeNode{addr: ln.Addr().String()}
	g := grpc.NewServer()
	sluicev1.RegisterDataServer(g, s)
	go g.Serve(ln)
	s.stop = g.Stop
	t.Cleanup(g.Stop)
	return s
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
