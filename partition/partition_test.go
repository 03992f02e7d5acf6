package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// The loop's own duties, with real goroutines; the core's rules are in
// core/testdata and the simulator.

func TestMain(m *testing.M) { goleakMain(m) }

// Restart: a partition on the old store replays only what the store had not
// applied; one on an empty store replays everything.
func TestRestartRecovers(t *testing.T) {
	l := newFakeLog()
	st := store.NewMemory()
	p := startServing(t, testConfig(l, st))
	ctx := context.Background()
	for i := range 20 {
		if _, err := p.Upsert(ctx, entries(fmt.Sprint("k", i), "v", "same", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	p.Kill()
	for _, st := range []store.Store{reopen(t, st), store.NewMemory()} {
		p := startServing(t, testConfig(l, st))
		r, err := p.Get(ctx, []byte("same"))
		if err != nil || !r.Found || string(r.Value.Data) != "19" || r.Value.Version != 20 {
			t.Fatalf("after restart Get(same) = %+v %v, want 19 at version 20", r, err)
		}
		if n, _ := p.Len(); n != 21 {
			t.Fatalf("%d keys after restart, want 21", n)
		}
		p.Close()
	}
}

// reopen is the same memory store as a new process would find it on disk.
func reopen(t *testing.T, st *store.Memory) *store.Memory {
	t.Helper()
	out := store.NewMemory()
	var changes []kv.Change
	if err := st.Each(func(k []byte, v kv.Value) bool {
		changes = append(changes, kv.Change{Key: k, Value: v.Data, Version: v.Version, Timestamp: v.Timestamp, ExpiresAt: v.ExpiresAt})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	offs, _ := st.Offsets()
	in, _ := st.IngestOffsets()
	clock, _ := st.Clock()
	if err := out.Apply(kv.Write{Changes: changes, Offsets: offs, Ingest: in, Clock: clock}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Many writers on few keys, with a read cache of two keys (or none, or a large one): prefetched
// values go stale between the caller's read and the loop all the time, and
// cached versions are evicted all the time. Every key's versions must still
// come out gapless and unique: no write built on a stale version.
func TestVersionsStayExactUnderStalePrefetchesAndEviction(t *testing.T) {
	for _, budget := range []int64{-1, 2 * (entryOverhead + 8), 16 << 20} {
		t.Run(fmt.Sprint("cache=", budget), func(t *testing.T) {
			cfg := testConfig(newFakeLog(), store.NewMemory())
			cfg.ReadCache = NewReadCache(budget)
			defer cfg.ReadCache.Close()
			p := startServing(t, cfg)
			const writers, writes, keys = 8, 150, 5
			var (
				mu  sync.Mutex
				got = map[string][]uint64{}
				wg  sync.WaitGroup
			)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range writes {
						k := fmt.Sprint("k", (w+i)%keys)
						es := []kv.Entry{{Key: []byte(k), Value: []byte("v")}}
						if i%3 == 0 { // two entries of one key in one batch
							es = append(es, es[0])
						}
						res, err := p.Upsert(context.Background(), es)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for _, r := range res {
							got[k] = append(got[k], r.Version)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for k, vs := range got {
				slices.Sort(vs)
				for i, v := range vs {
					if v != uint64(i+1) {
						t.Fatalf("%s: versions %v…: not 1..%d", k, vs[:min(len(vs), i+3)], len(vs))
					}
				}
				r, err := p.Get(context.Background(), []byte(k))
				if err != nil || !r.Found || r.Value.Version != uint64(len(vs)) {
					t.Fatalf("Get(%s) = %+v %v, want v%d", k, r, err, len(vs))
				}
			}
		})
	}
}

// A graceful close fails what was never appended and waits for the group in
// flight, whose request gets its true outcome.
func TestCloseWaitsForTheGroupInFlight(t *testing.T) {
	l := newFakeLog()
	p := startServing(t, testConfig(l, store.NewMemory()))
	gate := make(chan appendCall)
	l.setGate(gate)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := p.Upsert(ctx, entries("a", "1")); first <- err }()
	call := <-gate // group 1 is in flight
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a group was in flight")
	case err := <-first:
		t.Fatalf("the in-flight write was answered before its append: %v", err)
	default:
	}
	call.answer <- nil
	if err := <-first; err != nil {
		t.Fatalf("the write in flight at Close: %v, want its commit", err)
	}
	<-closed
	if _, err := p.Upsert(ctx, entries("b", "2")); !errors.Is(err, ErrStopped) {
		t.Fatalf("a write after Close: %v, want ErrStopped", err)
	}
}

// A reply that is there wins over the partition's end: when the loop
// answered and stopped, the caller gets the answer (it may say the write
// committed), never a plain "stopped", which says it did not.
func TestCallPrefersAReplyOverStop(t *testing.T) {
	for range 2000 {
		p := &Partition{inbox: make(chan *request, 1), done: make(chan struct{}), closing: make(chan struct{})}
		p.state.init(State{Phase: Serving})
		p.values = newValues(nil)
		p.cfg.Store = store.NewMemory()
		go func() {
			req := <-p.inbox
			req.reply <- core.Reply{Handle: req, Err: fmt.Errorf("%w: %w", ErrStopped, wal.ErrCommitUnknown)}
			close(p.done)
		}()
		_, err := p.call(context.Background(), &request{Request: core.Request{Op: core.OpGet, Key: []byte("k")}})
		if !errors.Is(err, wal.ErrCommitUnknown) {
			t.Fatalf("call = %v: the reply (outcome unknown) was lost to the partition's end", err)
		}
	}
}

// Reads that skip the inbox see only committed state, and a session read
// waits for the offsets a write returned.
func TestReadCommittedNeverSeesUncommitted(t *testing.T) {
	l := newFakeLog()
	p := startServing(t, testConfig(l, store.NewMemory()))
	gate := make(chan appendCall)
	l.setGate(gate)
	ctx := context.Background()
	done := make(chan []WriteResult, 1)
	go func() {
		res, err := p.Upsert(ctx, entries("a", "1"))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	call := <-gate
	if r, err := p.ReadCommitted([]byte("a")); err != nil || r.Found {
		t.Fatalf("ReadCommitted of a write in flight = %+v %v", r, err)
	}
	call.answer <- nil
	res := <-done
	if err := p.WaitApplied(ctx, res[0].Slot, res[0].Offset+1); err != nil {
		t.Fatal(err)
	}
	if r, err := p.ReadCommitted([]byte("a")); err != nil || !r.Found || string(r.Value.Data) != "1" {
		t.Fatalf("ReadCommitted after the session's offsets were applied = %+v %v", r, err)
	}
}

// While restoring, requests get Unavailable with the restore's progress.
func TestRestoringAnswersUnavailable(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	release := make(chan struct{})
	cfg.Owns = func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := Start(cfg)
	defer p.Close()
	_, err := p.Upsert(context.Background(), entries("a", "1"))
	var re *RestoringError
	if !errors.As(err, &re) || !IsUnavailable(err) {
		t.Fatalf("Upsert while restoring = %v, want a RestoringError", err)
	}
	close(release)
	waitFor(t, "the partition serves", p.Serving)
}

// The bytes of requests a partition (and a node's partitions together)
// hold are bounded: beyond the budget a write is refused at once, not
// applied, and the bytes come back when replies leave.
func TestBudgetBoundsHeldBytes(t *testing.T) {
	node := NewBudget(5000)
	l1, l2 := newFakeLog(), newFakeLog()
	cfg := testConfig(l1, store.NewMemory())
	cfg.MaxQueuedBytes, cfg.NodeBudget = 3000, node
	p1 := startServing(t, cfg)
	cfg = testConfig(l2, store.NewMemory())
	cfg.ID, cfg.NodeBudget = 2, node
	p2 := startServing(t, cfg)
	g1, g2 := make(chan appendCall), make(chan appendCall)
	l1.setGate(g1)
	l2.setGate(g2)
	ctx := context.Background()
	big := string(make([]byte, 2000)) // costs 2000 + the key + 128
	held := make(chan error, 2)
	go func() { _, err := p1.Upsert(ctx, entries("a", big)); held <- err }()
	c1 := <-g1
	if _, err := p1.Upsert(ctx, entries("b", big)); !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "partition 1 holds up to 3000 bytes") {
		t.Fatalf("a write over the partition's budget: %v, want ErrOverBudget naming it", err)
	}
	go func() { _, err := p2.Upsert(ctx, entries("c", big)); held <- err }()
	c2 := <-g2
	if _, err := p2.Upsert(ctx, entries("d", big)); !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "node's partitions hold up to 5000 bytes") {
		t.Fatalf("a write over the node's budget: %v, want ErrOverBudget naming it", err)
	}
	c1.answer <- nil
	c2.answer <- nil
	for range 2 {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
	l1.setGate(nil)
	l2.setGate(nil)
	for _, p := range []*Partition{p1, p2} {
		if _, err := p.Upsert(ctx, entries("e", big)); err != nil {
			t.Fatalf("partition %d after replies freed the bytes: %v", p.ID(), err)
		}
	}
}

// A new owner serves a lease after its fencing *returned*: an older owner
// may commit (and so renew its lease) until the fence takes effect, which
// may be long after it was asked for. Fencing here takes 1.5 s; serving
// before fencing returned + Lease would let the old owner's last lease and
// the new owner's writes overlap.
func TestLeaseWaitCountsFromWhenFencingReturned(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	cfg.Lease = 2 * time.Second
	returned := make(chan time.Time, 1)
	cfg.WAL.(*testLog).newAppender = func(ctx context.Context) (wal.Appender, error) {
		select { // fencing takes 1.5 s to take effect and return
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		returned <- time.Now()
		return fakeAppender{l}, nil
	}
	p := Start(cfg)
	defer p.Close()
	fenced := <-returned
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(fenced.Add(cfg.Lease - 20*time.Millisecond)) {
		if p.Serving() {
			t.Fatalf("served %s after fencing returned, before the lease of %s", time.Since(fenced), cfg.Lease)
		}
		<-tick.C
	}
	waitFor(t, "the partition serves", p.Serving)
}

// A restore asks again whether the partition is still its node's once its own
// producer is fenced in: a partition removed between the first check and its
// own fence is deposed, and its fresh producer closed, so it can never hold a
// live producer over slots a new owner fenced it from.
func TestOwnershipIsCheckedAgainAfterItsOwnFence(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	var asked atomic.Int32
	cfg.Owns = func(context.Context) error {
		if asked.Add(1) == 1 {
			return nil // before fencing: still the owner
		}
		return fmt.Errorf("%w: removed from the registry", ErrDeposed)
	}
	closed := make(chan struct{})
	cfg.WAL.(*testLog).newAppender = func(context.Context) (wal.Appender, error) {
		return closeNotifier{fakeAppender{l}, closed}, nil
	}
	p := Start(cfg)
	defer p.Close()
	waitFor(t, "the partition is deposed", func() bool { return p.Status().Deposed() })
	select {
	case <-closed:
	default:
		t.Fatal("the deposed partition kept its producer")
	}
	if _, err := p.Upsert(context.Background(), entries("a", "1")); !errors.Is(err, ErrDeposed) {
		t.Fatalf("a write to a deposed partition: %v, want ErrDeposed", err)
	}
}

type closeNotifier struct {
	fakeAppender
	closed chan struct{}
}

func (c closeNotifier) Close() { close(c.closed) }
