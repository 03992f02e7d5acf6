package partition

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedb/sluice/store"
)

// A linearizable Get of a quiet partition skips the loop, and still sees
// every write acknowledged before it: write, then read, many times over.
func TestQuietGetsSeeEveryAcknowledgedWrite(t *testing.T) {
	cfg := testConfig(newFakeLog(), store.NewMemory())
	cfg.Lease, cfg.SkipLeaseWait = time.Minute, true
	p := startServing(t, cfg)
	ctx := context.Background()
	quiet := 0
	for i := range 500 {
		v := fmt.Sprint("v", i)
		if _, err := p.Upsert(ctx, entries("k", v)); err != nil {
			t.Fatal(err)
		}
		if p.isQuiet() {
			quiet++
		}
		r, err := p.Get(ctx, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Value.Data) != v {
			t.Fatalf("write %d: a Get after the write's ack read %q, want %q", i, r.Value.Data, v)
		}
	}
	waitFor(t, "the partition is quiet", p.isQuiet)
	t.Logf("quiet right after %d of 500 acks", quiet)
}

// A quiet read answers only within the lease. Once appends stop
// committing (the owner is cut off) and the lease has run out, a Get must
// not answer from the store: a newer owner may have written since. Before
// quiet reads checked the lease, the Get below answered "v".
func TestQuietGetsStopWhenTheLeaseEnds(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	cfg.Lease, cfg.SkipLeaseWait = 100*time.Millisecond, true
	p := startServing(t, cfg)
	ctx := context.Background()
	if _, err := p.Upsert(ctx, entries("k", "v")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the partition is quiet", p.isQuiet)
	// From here every append waits for the test, which never answers: the
	// heartbeat a read past the lease needs never commits.
	gate := make(chan appendCall, 16)
	l.setGate(gate)
	waitFor(t, "the lease to end", func() bool { return !p.isQuiet() })
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := p.Get(rctx, []byte("k"))
	if err == nil {
		t.Fatalf("a Get past the lease, with no append committing, answered %q", r.Value.Data)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a Get past the lease: %v, want it to wait for the heartbeat (DeadlineExceeded)", err)
	}
	r2, err := p.GetMany(rctx, [][]byte{[]byte("k")}, nil)
	if err == nil {
		t.Fatalf("a GetMany past the lease answered %+v", r2)
	}
	for {
		select {
		case c := <-gate:
			c.answer <- errors.New("cut off")
		default:
			return
		}
	}
}

// While a write is pending the partition is not quiet: a Get goes through
// the loop, and waits behind it.
func TestAPendingWriteEndsQuiet(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	cfg.Lease, cfg.SkipLeaseWait = time.Minute, true
	p := startServing(t, cfg)
	ctx := context.Background()
	if _, err := p.Upsert(ctx, entries("k", "v1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the partition is quiet", p.isQuiet)
	gate := make(chan appendCall, 16)
	l.setGate(gate)
	acked := make(chan error, 1)
	go func() {
		_, err := p.Upsert(ctx, entries("k", "v2"))
		acked <- err
	}()
	var call appendCall
	select {
	case call = <-gate: // the write is in flight
	case <-time.After(30 * time.Second):
		t.Fatal("the write never reached the log")
	}
	defer func() { // a failed test still lets the partition close
		l.setGate(nil)
		select {
		case call.answer <- nil:
		default:
		}
	}()
	if p.isQuiet() {
		t.Fatal("quiet with a write in flight")
	}
	got := make(chan string, 1)
	go func() {
		r, err := p.Get(ctx, []byte("k"))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(r.Value.Data)
	}()
	l.setGate(nil)
	call.answer <- nil
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "v1" && v != "v2" {
		t.Fatalf("a Get concurrent with the write of v2 read %q", v)
	}
	r, err := p.Get(ctx, []byte("k"))
	if err != nil || string(r.Value.Data) != "v2" {
		t.Fatalf("a Get after the write's ack: %q %v, want v2", r.Value.Data, err)
	}
}
