package client

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// restoringNode answers every write "restoring" (UNAVAILABLE, NotApplied)
// for its first busy calls, as a partition does while it waits out the
// ownership lease after a move (10 s by default), then applies them.
type restoringNode struct {
	sluicev1.UnimplementedDataServer
	addr  string
	busy  int64
	calls atomic.Int64
}

func (s *restoringNode) GetRoutes(context.Context, *sluicev1.GetRoutesRequest) (*sluicev1.Routes, error) {
	return &sluicev1.Routes{Slots: 16, Routes: []*sluicev1.Route{{Partition: 1, From: 0, To: 16, Epoch: 1, Node: "n1", Addr: s.addr}}}, nil
}

func (s *restoringNode) Upsert(_ context.Context, req *sluicev1.UpsertRequest) (*sluicev1.UpsertResponse, error) {
	if s.calls.Add(1) <= s.busy {
		return nil, withDetail(codes.Unavailable, "partition 1: restoring, 0% done", &sluicev1.NotApplied{})
	}
	return &sluicev1.UpsertResponse{Results: make([]*sluicev1.WriteResult, len(req.Entries))}, nil
}

func startRestoringNode(t *testing.T, busy int64) *restoringNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &restoringNode{addr: ln.Addr().String(), busy: busy}
	g := grpc.NewServer()
	sluicev1.RegisterDataServer(g, s)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return s
}

// A call with a deadline is retried until the deadline, however many tries
// that takes: a partition that restores for longer than the default number
// of tries (30, about 12 s of backoff, as little as 7 s with its jitter)
// fails no caller who gave it longer. Before, every call stopped after 30
// tries: a writer with a 60 s deadline failed during a planned --wal disk
// move, which waits out the 10 s ownership lease.
func TestACallWithADeadlineIsTriedUntilIt(t *testing.T) {
	s := startRestoringNode(t, DefaultMaxAttempts+5)
	c, err := Dial([]string{s.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("a write retried until its deadline failed after %d calls: %v", s.calls.Load(), err)
	}
	if got := s.calls.Load(); got != DefaultMaxAttempts+6 {
		t.Fatalf("%d calls, want %d", got, DefaultMaxAttempts+6)
	}
}

// With no deadline a call stops after DefaultMaxAttempts tries, and
// WithMaxAttempts bounds a call with a deadline.
func TestTriesAreBoundedWithoutADeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []Option
		deadline bool
		want     int64
	}{
		{"no deadline", nil, false, DefaultMaxAttempts},
		{"WithMaxAttempts(3) and a deadline", []Option{WithMaxAttempts(3)}, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startRestoringNode(t, 1000)
			c, err := Dial([]string{s.addr}, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if tc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
				defer cancel()
			}
			_, err = c.Upsert(ctx, Entry{Key: []byte("k"), Value: []byte("v")})
			if err == nil || s.calls.Load() != tc.want {
				t.Fatalf("%d calls, then %v; want %d calls and the restoring error", s.calls.Load(), err, tc.want)
			}
		})
	}
}
