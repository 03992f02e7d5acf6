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

	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// A partition's published state moves through the phases of its life, as
// an outside reader polling Status sees them: each step of a restore
// (each held by the test until the reader saw it), then serving, closing,
// stopped; and Serving, Gauges and the errors of a partition that does
// not serve agree with it at every step.

// watcher polls p.Status() as a node's /healthz or metrics do, and keeps
// the phases it saw, each change once.
type watcher struct {
	p          *Partition
	mu         sync.Mutex
	seen       []Phase
	quit, done chan struct{}
}

func watchPhases(p *Partition) *watcher {
	w := &watcher{p: p, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			w.see()
			select {
			case <-w.quit:
				w.see()
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	return w
}

func (w *watcher) see() {
	ph := w.p.Status().Phase
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 || w.seen[len(w.seen)-1] != ph {
		w.seen = append(w.seen, ph)
	}
}

// saw reports whether the reader saw ph last.
func (w *watcher) saw(ph Phase) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen) > 0 && w.seen[len(w.seen)-1] == ph
}

// stop ends the polling and returns the phases seen.
func (w *watcher) stop() []Phase {
	close(w.quit)
	<-w.done
	return w.seen
}

// waitSeen waits until the reader saw p in phase ph (the test holds it
// there).
func waitSeen(t *testing.T, w *watcher, ph Phase) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a reader sees phase %s (%s)", ph.Step(), ph), func() bool { return w.saw(ph) })
}

// inOrder checks that seen follows order (a reader may miss a phase held
// only for an instant) and holds every phase of must.
func inOrder(t *testing.T, seen, order, must []Phase) {
	t.Helper()
	at := -1
	for _, ph := range seen {
		i := slices.Index(order, ph)
		if i <= at {
			t.Fatalf("phases seen %v: %v out of order (want an order of %v)", seen, ph, order)
		}
		at = i
	}
	for _, ph := range must {
		if !slices.Contains(seen, ph) {
			t.Fatalf("phases seen %v: %v missing", seen, ph)
		}
	}
}

// hold blocks until the test releases it (or ctx ends).
type hold chan struct{}

func (h hold) wait(ctx context.Context) error {
	select {
	case <-h:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkNotServing checks what a reader sees of a partition in phase ph
// that does not serve: Serving, the gauge's state word, and a request's
// error.
func checkNotServing(t *testing.T, p *Partition, want string, errIs func(error) bool) {
	t.Helper()
	if p.Serving() {
		t.Fatalf("Serving() in phase %s", p.Status().Phase.Step())
	}
	if g := p.Gauges(); g.State != want {
		t.Fatalf("Gauges().State = %q in phase %s, want %q", g.State, p.Status().Phase.Step(), want)
	}
	if _, err := p.Upsert(context.Background(), entries("a", "1")); !errIs(err) || !IsUnavailable(err) {
		t.Fatalf("Upsert in phase %s: %v", p.Status().Phase.Step(), err)
	}
}

func isRestoring(err error) bool {
	var re *RestoringError
	return errors.As(err, &re)
}

func isStopped(err error) bool { return errors.Is(err, ErrStopped) }

func TestAStartMovesThroughThePhases(t *testing.T) {
	t.Run("each step of the restore, then a close", func(t *testing.T) {
		l := newFakeLog()
		cfg := testConfig(l, store.NewMemory())
		cfg.LeaseWait = time.Hour // the restored partition waits until it is closed
		registry, snapshot, fence, replay := make(hold), make(hold), make(hold), make(hold)
		var asked atomic.Int32
		cfg.Owns = func(ctx context.Context) error {
			if asked.Add(1) == 1 {
				return registry.wait(ctx)
			}
			return nil // again, after the fence
		}
		cfg.Seed = func(ctx context.Context) (bool, error) { return false, snapshot.wait(ctx) }
		cfg.WAL.(*testLog).newAppender = func(ctx context.Context) (wal.Appender, error) {
			if err := fence.wait(ctx); err != nil {
				return nil, err
			}
			return fakeAppender{l}, nil
		}
		const waiting = "slot 2 at offset 5 of 9"
		cfg.WAL.(*testLog).replay = func(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error, w func(string)) (map[int32]int64, error) {
			w(waiting)
			if err := replay.wait(ctx); err != nil {
				return nil, err
			}
			w("")
			return l.replay(ctx, from, fn, w)
		}
		p := Start(cfg)
		w := watchPhases(p)
		defer p.Close()

		for _, step := range []struct {
			ph      Phase
			release hold
		}{{RestoreRegistry, registry}, {RestoreSnapshot, snapshot}, {RestoreFence, fence}, {RestoreReplay, replay}} {
			waitSeen(t, w, step.ph)
			checkNotServing(t, p, "restoring", isRestoring)
			if st := p.Status(); st.Epoch != cfg.Epoch || st.Err != nil || st.Deposed() {
				t.Fatalf("in phase %s: %+v", step.ph.Step(), st)
			}
			if step.ph == RestoreReplay {
				// The replay names what it waits for: Status, the gauge and
				// the error a request gets.
				waitFor(t, "the replay's wait is published", func() bool { return p.Status().Waiting == waiting })
				if g := p.Gauges(); g.Waiting != waiting {
					t.Fatalf("Gauges().Waiting = %q, want %q", g.Waiting, waiting)
				}
				_, err := p.Get(context.Background(), []byte("a"))
				if want := "partition 1: restoring, 0% done (" + waiting + ")"; err == nil || err.Error() != want {
					t.Fatalf("Get while the replay waits: %v, want %q", err, want)
				}
			}
			close(step.release)
		}
		waitSeen(t, w, RestoreLeaseWait)
		checkNotServing(t, p, "restoring", isRestoring)
		if st := p.Status(); st.Waiting != "" || st.Lag != 0 {
			t.Fatalf("restored, waiting out the lease: %+v", st)
		}
		p.Close()
		if st := p.Status(); st.Phase != Stopped {
			t.Fatalf("after Close: phase %s, want stopped", st.Phase.Step())
		}
		checkNotServing(t, p, "stopped", isStopped)
		order := []Phase{RestoreDue, RestoreRegistry, RestoreSnapshot, RestoreFence, RestoreReplay, RestoreLeaseWait, Closing, Stopped}
		inOrder(t, w.stop(), order, []Phase{RestoreRegistry, RestoreSnapshot, RestoreFence, RestoreReplay, RestoreLeaseWait, Stopped})
	})

	t.Run("serving, then a graceful close", func(t *testing.T) {
		l := newFakeLog()
		cfg := testConfig(l, store.NewMemory())
		cfg.DrainTimeout = time.Hour // the close waits for the group in flight until the test answers it
		p := Start(cfg)
		w := watchPhases(p)
		defer p.Close()
		waitSeen(t, w, Serving)
		if st := p.Status(); !st.Serving() || st.Percent != 100 || st.Waiting != "" || st.Lag != 0 {
			t.Fatalf("serving: %+v", st)
		}
		if g := p.Gauges(); g.State != "serving" || g.Waiting != "" {
			t.Fatalf("serving: gauges %+v", g)
		}
		gate := make(chan appendCall)
		l.setGate(gate)
		ctx := context.Background()
		first := make(chan error, 1)
		go func() { _, err := p.Upsert(ctx, entries("a", "1")); first <- err }()
		call := <-gate // in flight: the close waits for it
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		waitSeen(t, w, Closing)
		checkNotServing(t, p, "closing", isStopped)
		call.answer <- nil
		if err := <-first; err != nil {
			t.Fatalf("the write in flight at Close: %v", err)
		}
		<-closed
		checkNotServing(t, p, "stopped", isStopped)
		order := []Phase{RestoreDue, RestoreRegistry, RestoreSnapshot, RestoreFence, RestoreReplay, RestoreLeaseWait, Serving, Closing, Stopped}
		inOrder(t, w.stop(), order, []Phase{Serving, Closing, Stopped})
	})

	t.Run("a re-sync restores again from its first step", func(t *testing.T) {
		l := newFakeLog()
		cfg := testConfig(l, store.NewMemory())
		resync := make(hold)
		var asked atomic.Int32
		cfg.Owns = func(ctx context.Context) error {
			if asked.Add(1) <= 2 {
				return nil // the start's two checks
			}
			return resync.wait(ctx)
		}
		p := startServing(t, cfg)
		w := watchPhases(p)
		waitSeen(t, w, Serving)
		gate := make(chan appendCall)
		l.setGate(gate)
		ctx := context.Background()
		first := make(chan error, 1)
		go func() { _, err := p.Upsert(ctx, entries("a", "1")); first <- err }()
		call := <-gate
		l.setGate(nil)
		call.answer <- fmt.Errorf("the broker refused the transaction: %w", wal.ErrNotCommitted)
		if err := <-first; err == nil {
			t.Fatal("a write whose append failed succeeded")
		}
		waitSeen(t, w, RestoreRegistry)
		checkNotServing(t, p, "restoring", isRestoring)
		if st := p.Status(); st.Percent != 0 || st.Waiting != "" {
			t.Fatalf("re-syncing: %+v, want the restore's progress to start over", st)
		}
		close(resync)
		waitSeen(t, w, Serving)
		if _, err := p.Upsert(ctx, entries("b", "2")); err != nil {
			t.Fatalf("after the re-sync: %v", err)
		}
		order := []Phase{Serving, RestoreDue, RestoreRegistry, RestoreSnapshot, RestoreFence, RestoreReplay, RestoreLeaseWait}
		seen := w.stop()
		inOrder(t, seen[:len(seen)-1], order, []Phase{Serving, RestoreRegistry})
		if seen[len(seen)-1] != Serving {
			t.Fatalf("phases seen %v, want serving last", seen)
		}
	})

	t.Run("deposed, then stopped", func(t *testing.T) {
		l := newFakeLog()
		cfg := testConfig(l, store.NewMemory())
		cfg.Owns = func(context.Context) error { return fmt.Errorf("%w: removed from the registry", ErrDeposed) }
		p := Start(cfg)
		w := watchPhases(p)
		waitSeen(t, w, Deposed)
		checkNotServing(t, p, "deposed", func(err error) bool { return errors.Is(err, ErrDeposed) })
		if st := p.Status(); !st.Deposed() || !strings.Contains(st.Err.Error(), "removed from the registry") {
			t.Fatalf("deposed: %+v", st)
		}
		p.Close()
		if st := p.Status(); st.Phase != Stopped || !st.Deposed() {
			t.Fatalf("a deposed partition, closed: %+v, want stopped and still deposed", st)
		}
		inOrder(t, w.stop(), []Phase{RestoreDue, RestoreRegistry, Deposed, Stopped}, []Phase{Deposed, Stopped})
	})
}
