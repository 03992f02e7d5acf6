package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Many clients incrementing the same keys end with exact totals: the
// read-modify-write runs in the partition's single goroutine.
func TestConcurrentIncrementsAreExact(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	const clients, each, keys = 16, 40, 4
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := client.New(n.DataAddr())
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 0; i < each; i++ {
				if _, err := cl.Increment(ctx, fmt.Append(nil, "counter-", (c+i)%keys), 3); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := int64(0)
	for k := 0; k < keys; k++ {
		got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: fmt.Append(nil, "counter-", k)})
		if err != nil {
			t.Fatal(err)
		}
		var v int64
		fmt.Sscan(string(got.Value), &v)
		total += v
		if got.Version != uint64(v/3) {
			t.Fatalf("counter-%d = %d at version %d: an increment was lost or doubled", k, v, got.Version)
		}
	}
	if total != clients*each*3 {
		t.Fatalf("counters sum to %d, want %d", total, clients*each*3)
	}
	if _, err := n.data.Upsert(ctx, upsert("text", "abc")); err != nil {
		t.Fatal(err)
	}
	_, err := n.data.Increment(ctx, &sluicev1.IncrementRequest{Key: []byte("text"), Delta: 1})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "not a decimal int64") {
		t.Fatalf("increment of a text value: %v", err)
	}
	if _, err := n.data.Upsert(ctx, upsert("big", "9223372036854775807")); err != nil {
		t.Fatal(err)
	}
	_, err = n.data.Increment(ctx, &sluicev1.IncrementRequest{Key: []byte("big"), Delta: 1})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "overflows") {
		t.Fatalf("overflowing increment: %v", err)
	}
}

// Compare-and-set under contention: every success moved the version by one
// from the version it expected, no two successes shared an expectation, and a
// failure is ABORTED naming the current version.
func TestCompareAndSetUnderContention(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	zero := uint64(0)
	if _, err := n.data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte("cas"), Value: []byte("0"), ExpectedVersion: &zero}}}); err != nil {
		t.Fatal(err)
	}
	_, err := n.data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte("cas"), Value: []byte("again"), ExpectedVersion: &zero}}})
	if st := status.Convert(err); st.Code() != codes.Aborted || !strings.Contains(st.Message(), "current version is 1") {
		t.Fatalf("must-not-exist on an existing key: %v", err)
	}
	var wins atomic.Int64
	seen := sync.Map{}
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				cur, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("cas")})
				if err != nil {
					t.Error(err)
					return
				}
				v := cur.Version
				_, err = n.data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte("cas"), Value: fmt.Append(nil, c), ExpectedVersion: &v}}})
				switch status.Code(err) {
				case codes.OK:
					wins.Add(1)
					if _, dup := seen.LoadOrStore(v, c); dup {
						t.Errorf("two writes succeeded expecting version %d", v)
					}
				case codes.Aborted:
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	final, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("cas")})
	if err != nil || final.Version != uint64(wins.Load())+1 {
		t.Fatalf("final version %d after %d successful CAS writes (+1 create): %v", final.GetVersion(), wins.Load(), err)
	}
}

// A SESSION read through another client, given the writer's session token,
// sees the write; EVENTUAL reads committed state.
func TestSessionAndEventualReads(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	w, err := client.New(n.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := client.New(n.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 50; i++ {
		key, val := fmt.Append(nil, "s", i), fmt.Append(nil, "v", i)
		if _, err := w.Upsert(ctx, client.Entry{Key: key, Value: val}); err != nil {
			t.Fatal(err)
		}
		if v, found, err := r.GetSession(ctx, key, w.Session()); err != nil || !found || string(v.Data) != string(val) {
			t.Fatalf("session read of %s: %q %v %v", key, v.Data, found, err)
		}
		if v, found, err := r.GetEventual(ctx, key); err != nil || !found || string(v.Data) != string(val) {
			t.Fatalf("eventual read of %s after its ack: %q %v %v", key, v.Data, found, err)
		}
	}
	// A token ahead of anything applied waits until the deadline.
	far := &sluicev1.Session{Offsets: map[int32]int64{}}
	for s := int32(0); s < 16; s++ {
		far.Offsets[s] = 1 << 40
	}
	shortCtx, cancel := context.WithTimeout(ctx, 300_000_000)
	defer cancel()
	_, err = n.data.Get(shortCtx, &sluicev1.GetRequest{Key: []byte("s1"), Consistency: sluicev1.Consistency_SESSION, Session: far})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a session read ahead of the replica: %v, want DeadlineExceeded", err)
	}
}

// A batch at exactly the 1 MiB limit is accepted, committed to Kafka (the
// topic's and the producer's size limits leave room for it) and read back.
func TestOneMiBBatchRoundTrips(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	key := []byte(strings.Repeat("k", 1024))
	value := []byte(strings.Repeat("v", 1<<20-len(key)))
	if _, err := n.data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: key, Value: value}}}); err != nil {
		t.Fatalf("a 1 MiB batch: %v", err)
	}
	got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: key})
	if err != nil || len(got.Value) != len(value) {
		t.Fatalf("read back %d bytes, %v", len(got.GetValue()), err)
	}
	// Many keys adding up to the limit, too.
	req := &sluicev1.UpsertRequest{}
	for i := 0; i < 1024; i++ {
		k := fmt.Appendf(nil, "big-%04d", i)
		req.Entries = append(req.Entries, &sluicev1.Entry{Key: k, Value: make([]byte, 1024-len(k))})
	}
	if _, err := n.data.Upsert(ctx, req); err != nil {
		t.Fatalf("1024 entries of 1 KiB: %v", err)
	}
}
