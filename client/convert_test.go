package client

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// wireNode is a one-partition node that records what the client sent in
// the generated types and answers fixed values.
type wireNode struct {
	sluicev1.UnimplementedDataServer
	addr string
	mu   sync.Mutex
	// what it received
	levels   []sluicev1.Consistency
	sessions []*sluicev1.Session
	ttl      uint32
}

func (s *wireNode) got(level sluicev1.Consistency, session *sluicev1.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.levels = append(s.levels, level)
	s.sessions = append(s.sessions, session)
}

func (s *wireNode) GetRoutes(context.Context, *sluicev1.GetRoutesRequest) (*sluicev1.Routes, error) {
	return &sluicev1.Routes{Slots: 16, Routes: []*sluicev1.Route{{Partition: 1, From: 0, To: 16, Epoch: 1, Node: "n1", Addr: s.addr}}}, nil
}

func (s *wireNode) Upsert(_ context.Context, req *sluicev1.UpsertRequest) (*sluicev1.UpsertResponse, error) {
	resp := &sluicev1.UpsertResponse{Session: &sluicev1.Session{Offsets: map[int32]int64{7: 42}, Cluster: "c/1"}}
	for i := range req.Entries {
		resp.Results = append(resp.Results, &sluicev1.WriteResult{Version: uint64(i + 1), Timestamp: 99, Slot: 7, Offset: int64(41 + i)})
	}
	return resp, nil
}

func (s *wireNode) Increment(_ context.Context, req *sluicev1.IncrementRequest) (*sluicev1.IncrementResponse, error) {
	s.mu.Lock()
	s.ttl = req.TtlSeconds
	s.mu.Unlock()
	return &sluicev1.IncrementResponse{Value: req.Delta}, nil
}

func (s *wireNode) Get(_ context.Context, req *sluicev1.GetRequest) (*sluicev1.GetResponse, error) {
	s.got(req.Consistency, req.Session)
	return &sluicev1.GetResponse{Found: true, Value: []byte("v"), Version: 3}, nil
}

func (s *wireNode) GetMany(_ context.Context, req *sluicev1.GetManyRequest) (*sluicev1.GetManyResponse, error) {
	s.got(req.Consistency, req.Session)
	resp := &sluicev1.GetManyResponse{}
	for range req.Keys {
		resp.Results = append(resp.Results, &sluicev1.KeyRead{Found: true, Value: []byte("v")})
	}
	return resp, nil
}

func (s *wireNode) Scan(req *sluicev1.ScanRequest, st grpc.ServerStreamingServer[sluicev1.ScanResponse]) error {
	s.got(req.Consistency, req.Session)
	return nil
}

func (s *wireNode) Watch(req *sluicev1.WatchRequest, st grpc.ServerStreamingServer[sluicev1.WatchResponse]) error {
	s.got(0, req.From)
	return st.Send(&sluicev1.WatchResponse{
		Events:  []*sluicev1.WatchEvent{{Key: []byte("w"), Value: []byte("x"), Version: 2, Slot: 5, Offset: 10}},
		Session: &sluicev1.Session{Offsets: map[int32]int64{5: 11}, Cluster: "c/1"},
	})
}

func startWireNode(t *testing.T) *wireNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &wireNode{addr: ln.Addr().String()}
	g := grpc.NewServer()
	sluicev1.RegisterDataServer(g, s)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return s
}

// The client's own types carry every field across the boundary, both ways:
// write results, the session a write reached, the read levels and the
// session a read names, a watch's token, an Increment's TTL.
func TestClientTypesCrossTheWire(t *testing.T) {
	s := startWireNode(t)
	c, err := Dial([]string{s.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	res, err := c.Upsert(ctx, Entry{Key: []byte("a"), Value: []byte("1")}, Entry{Key: []byte("a"), Value: []byte("2")})
	if err != nil {
		t.Fatal(err)
	}
	if *res[0] != (WriteResult{Version: 1, Timestamp: 99, Slot: 7, Offset: 41}) || *res[1] != (WriteResult{Version: 2, Timestamp: 99, Slot: 7, Offset: 42}) {
		t.Fatalf("write results %+v %+v", *res[0], *res[1])
	}
	own := c.Session()
	if !maps.Equal(own.Offsets, map[int32]int64{7: 42}) || own.Cluster != "c/1" {
		t.Fatalf("session after a write: %+v", own)
	}
	own.Offsets[7] = 0 // the caller's copy: the client's own session is kept apart
	if c.Session().Offsets[7] != 42 {
		t.Fatal("changing a returned session changed the client's")
	}

	if n, err := c.IncrementTTL(ctx, []byte("hits"), 5, 1500*time.Millisecond); err != nil || n != 5 || s.ttl != 2 {
		t.Fatalf("IncrementTTL: %d %v, the node got ttl_seconds %d, want 2 (rounded up)", n, err, s.ttl)
	}

	mine := &Session{Offsets: map[int32]int64{3: 8}, Cluster: "c/1"}
	if _, _, err := c.GetSession(ctx, []byte("a"), mine); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetEventual(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	for _, level := range []Consistency{Linearizable, SessionRead, Eventual} {
		if _, err := c.GetMany(ctx, [][]byte{[]byte("a")}, ReadOptions{Consistency: level, Session: mine}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ScanPage(ctx, ScanOptions{Prefix: []byte("a"), Consistency: level, Session: mine}); err != nil {
			t.Fatal(err)
		}
	}
	want := []sluicev1.Consistency{sluicev1.Consistency_SESSION, sluicev1.Consistency_EVENTUAL,
		sluicev1.Consistency_LINEARIZABLE, sluicev1.Consistency_LINEARIZABLE,
		sluicev1.Consistency_SESSION, sluicev1.Consistency_SESSION,
		sluicev1.Consistency_EVENTUAL, sluicev1.Consistency_EVENTUAL}
	s.mu.Lock()
	levels, sessions := s.levels, s.sessions
	s.mu.Unlock()
	if len(levels) != len(want) {
		t.Fatalf("the node got levels %v, want %v", levels, want)
	}
	for i := range want {
		if levels[i] != want[i] {
			t.Fatalf("call %d: the node got level %v, want %v", i, levels[i], want[i])
		}
		if i == 1 { // GetEventual names no session
			continue
		}
		if got := sessions[i]; got == nil || !maps.Equal(got.Offsets, mine.Offsets) || got.Cluster != "c/1" {
			t.Fatalf("call %d (%v): the node got session %v, want %+v", i, levels[i], got, mine)
		}
	}

	stop := errors.New("stop")
	var batch WatchBatch
	err = c.Watch(ctx, nil, WatchOptions{From: mine}, func(b WatchBatch) error { batch = b; return stop })
	if err != stop || len(batch.Changes) != 1 || !reflect.DeepEqual(batch.Changes[0], Change{Key: []byte("w"), Value: []byte("x"), Version: 2, Slot: 5, Offset: 10}) {
		t.Fatalf("watch: %v, batch %+v", err, batch)
	}
	if !maps.Equal(batch.Session.Offsets, map[int32]int64{5: 11}) || batch.Session.Cluster != "c/1" {
		t.Fatalf("watch token %+v", batch.Session)
	}
}

// A session token's JSON form is the generated message's (the CLI prints
// and takes it), and reads back to the same token.
func TestSessionJSON(t *testing.T) {
	s := &Session{Offsets: map[int32]int64{3: 120, 15: 7}, Cluster: "prod/abc"}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"offsets":{"3":"120","15":"7"},"cluster":"prod/abc"}`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back Session
	if err := json.Unmarshal(b, &back); err != nil || !maps.Equal(back.Offsets, s.Offsets) || back.Cluster != s.Cluster {
		t.Fatalf("read back %+v, %v", back, err)
	}
	if err := back.UnmarshalJSON([]byte(`{"offsets":{"x":"1"}}`)); err == nil {
		t.Fatal("a token with slot x was read")
	}
}

// The read levels have their names, both ways.
func TestConsistencyNames(t *testing.T) {
	for _, level := range []Consistency{Linearizable, SessionRead, Eventual} {
		if got, err := ParseConsistency(level.String()); err != nil || got != level {
			t.Fatalf("%v: parsed %v, %v", level, got, err)
		}
		if consistencyToProto(level).String() != level.String() {
			t.Fatalf("%v is %v on the wire", level, consistencyToProto(level))
		}
	}
	if got, err := ParseConsistency("Eventual"); err != nil || got != Eventual {
		t.Fatalf("Eventual: %v %v", got, err)
	}
	if _, err := ParseConsistency("strong"); err == nil {
		t.Fatal("strong parsed")
	}
}
