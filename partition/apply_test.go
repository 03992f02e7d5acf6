package partition

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/store"
)

// gatedStore holds Apply while blocked is set, and fails reads while failReads is.
type gatedStore struct {
	*store.Memory
	blocked   atomic.Bool
	release   chan struct{}
	failReads atomic.Bool
}

func (s *gatedStore) Apply(b store.Batch) error {
	if s.blocked.Load() {
		<-s.release
	}
	return s.Memory.Apply(b)
}

func (s *gatedStore) Get(key []byte) (store.Value, bool, error) {
	if s.failReads.Load() {
		return store.Value{}, false, errBoom
	}
	return s.Memory.Get(key)
}

func (s *gatedStore) GetMany(keys [][]byte) ([]store.Read, error) {
	if s.failReads.Load() {
		return nil, errBoom
	}
	return s.Memory.GetMany(keys)
}

// A committed group's replies leave before its store write, and the next
// group's transaction starts meanwhile; reads on the loop still see it.
func TestRepliesAndNextTransactionDoNotWaitForTheStore(t *testing.T) {
	l := newFakeLog()
	l.gate = make(chan appendCall)
	st := &gatedStore{Memory: store.NewMemory(), release: make(chan struct{})}
	p := startServing(t, testConfig(l, st))
	ctx := context.Background()
	st.blocked.Store(true)
	done := make(chan error, 2)
	go func() { _, err := p.Upsert(ctx, entries("a", "1")); done <- err }()
	first := <-l.gate
	go func() { _, err := p.Upsert(ctx, entries("b", "2")); done <- err }()
	time.Sleep(10 * time.Millisecond) // let it reach the inbox, then the open group
	waitFor(t, func() bool { return p.InboxLen() == 0 })
	first.answer <- appendAnswer{commit: true}
	// Group 1's store write is held until the end: neither its reply nor
	// group 2's transaction may wait for it (if they did, they never come).
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reply waited for the store write")
	}
	var second appendCall
	select {
	case second = <-l.gate:
	case <-time.After(5 * time.Second):
		t.Fatal("the next transaction waited for the store write")
	}
	close(st.release)
	second.answer <- appendAnswer{commit: true}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, found, err := p.Get(ctx, []byte("a")); err != nil || !found || string(v.Data) != "1" {
		t.Fatalf("Get(a) = %q %v %v", v.Data, found, err)
	}
}

// The group in flight when a re-sync starts is no longer the loop's: its
// result, when it comes, is dropped (its requests already failed), not taken
// as a second failure that would start a second restore over the first.
func TestAppendResultFromBeforeAResyncIsDropped(t *testing.T) {
	l := newFakeLog()
	l.gate = make(chan appendCall)
	st := &gatedStore{Memory: store.NewMemory(), release: make(chan struct{})}
	var logs syncBuffer
	cfg := testConfig(l, st)
	cfg.Log = zerolog.New(&logs)
	p := startServing(t, cfg)
	ctx := context.Background()
	upserted := make(chan error, 1)
	go func() { _, err := p.Upsert(ctx, entries("a", "1")); upserted <- err }()
	inflight := <-l.gate
	st.failReads.Store(true)
	if _, _, err := p.Get(ctx, []byte("x")); err == nil { // the store fails: re-sync
		t.Fatal("Get with a failing store succeeded")
	}
	if err := <-upserted; err == nil {
		t.Fatal("the upsert in flight at the re-sync was acknowledged")
	}
	st.failReads.Store(false)
	inflight.answer <- appendAnswer{err: errBoom} // the stale group's result
	// Later appends (after the restore) commit.
	go func() {
		for c := range l.gate {
			c.answer <- appendAnswer{commit: true}
		}
	}()
	defer close(l.gate)
	waitServing(t, p)
	if _, err := p.Upsert(ctx, entries("a", "2")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if n := strings.Count(logs.String(), "re-syncing"); n != 1 {
		t.Fatalf("%d re-syncs logged, want 1:\n%s", n, logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
