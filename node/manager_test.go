package node

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/registry"
)

func TestDelta(t *testing.T) {
	p := func(id uint32, from, to int32, epoch uint64) registry.Partition {
		return registry.Partition{ID: id, Range: keyspace.Range{From: from, To: to}, Owner: "n1", Epoch: epoch}
	}
	own := func(ps ...registry.Partition) map[uint32]want {
		m := map[uint32]want{}
		for _, x := range ps {
			m[x.ID] = want{x, owner}
		}
		return m
	}
	current := own(p(1, 0, 4, 1), p(2, 4, 8, 1), p(3, 8, 12, 1))
	current[5] = want{p(5, 12, 14, 1), standby} // a standby that becomes the owner
	current[6] = want{p(6, 14, 15, 1), owner}   // an owner that keeps a standby
	desired := own(p(1, 0, 4, 1), p(3, 8, 12, 2), p(4, 15, 16, 1), p(5, 12, 14, 2))
	desired[6] = want{p(6, 14, 15, 2), standby}
	desired[7] = want{p(7, 16, 17, 1), standby}
	var got []string
	for _, o := range delta(current, desired) {
		got = append(got, fmt.Sprint(o.kind, " ", o.spec.ID, "@", o.spec.Epoch))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[add 4@1 del 2@1 demote 6@2 promote 5@2 standby 7@1 update 3@2]" {
		t.Fatalf("delta = %v", got)
	}
	if ops := delta(desired, desired); len(ops) != 0 {
		t.Fatalf("no change gave ops %v", ops)
	}
}

// fakeSource is a registry view that the test sets, with the registry's
// Changed semantics: a channel closed at the next change.
type fakeSource struct {
	mu      sync.Mutex
	view    *registry.View
	changed chan struct{}
	taken   int // calls of Changed: the manager is about to wait
}

func newFakeSource(ps ...registry.Partition) *fakeSource {
	s := &fakeSource{changed: make(chan struct{})}
	s.set(ps...)
	return s
}

func (s *fakeSource) set(ps ...registry.Partition) {
	v := &registry.View{Partitions: map[uint32]registry.Partition{}, Nodes: map[string]registry.Node{}}
	for _, p := range ps {
		v.Partitions[p.ID] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.view = v
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeSource) View() *registry.View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.view
}

func (s *fakeSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taken++
	return s.changed
}

func (s *fakeSource) takes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taken
}

// fakeExec records the ops the manager runs; a release of the partition
// named by hold blocks until unblock is closed.
type fakeExec struct {
	mu        sync.Mutex
	opened    map[uint32]registry.Partition // partitions held (owner or standby)
	releasing map[uint32]bool
	log       []string
	overlap   []string // an op on a partition while another op on it ran

	hold     uint32
	held     chan struct{} // closed when the held release has begun
	unblock  chan struct{}
	holdOnce sync.Once
}

func newFakeExec() *fakeExec {
	return &fakeExec{opened: map[uint32]registry.Partition{}, releasing: map[uint32]bool{}, held: make(chan struct{}), unblock: make(chan struct{})}
}

func (e *fakeExec) open(spec registry.Partition, asStandby bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.releasing[spec.ID] {
		e.overlap = append(e.overlap, fmt.Sprintf("open %d@%d during its release", spec.ID, spec.Epoch))
	}
	e.opened[spec.ID] = spec
	e.log = append(e.log, fmt.Sprintf("open %d@%d", spec.ID, spec.Epoch))
	return nil
}

func (e *fakeExec) release(id uint32, wipe bool) {
	e.mu.Lock()
	e.releasing[id] = true
	hold := id == e.hold
	e.mu.Unlock()
	if hold {
		e.holdOnce.Do(func() { close(e.held) })
		<-e.unblock
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.opened, id)
	delete(e.releasing, id)
	e.log = append(e.log, fmt.Sprintf("released %d", id))
}

func (e *fakeExec) promote(spec registry.Partition) error { return e.open(spec, false) }

func (e *fakeExec) respec(spec registry.Partition) {}

// holds reports whether the partition is open at epoch.
func (e *fakeExec) holds(id uint32, epoch uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.opened[id]
	return ok && p.Epoch == epoch
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("not within 30s: %s", what)
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// A partition moved away and back while its release is held open serves
// again at its new epoch once the release ends, and the held release delays
// neither the routing table nor any other partition's ops (issue 11 §2: a
// registry change that arrived during a reconcile used to be lost).
func TestManagerSlowReleaseLosesNothingAndDelaysNoOne(t *testing.T) {
	p := func(id uint32, from, to int32, owner string, epoch uint64) registry.Partition {
		return registry.Partition{ID: id, Range: keyspace.Range{From: from, To: to}, Owner: owner, Epoch: epoch}
	}
	src := newFakeSource()
	exec := newFakeExec()
	exec.hold = 1
	var routed atomic.Pointer[registry.View]
	stop := make(chan struct{})
	m := newManager("n1", src, exec, func(v *registry.View) { routed.Store(v) }, zerolog.New(zerolog.NewTestWriter(t)), stop)
	done := make(chan struct{})
	go func() { m.run(); close(done) }()
	var unblock sync.Once
	release := func() { unblock.Do(func() { close(exec.unblock) }) }
	defer func() {
		release()
		close(stop)
		<-done
	}()
	// Each change is made once the manager has taken the change signal, so
	// that no test step races the manager's start.
	waitFor(t, "the manager waits for a registry change", func() bool { return src.takes() >= 1 })
	src.set(p(1, 0, 4, "n1", 1), p(2, 4, 8, "n1", 1))
	if !waitFor(t, "partitions 1 and 2 open at epoch 1", func() bool { return exec.holds(1, 1) && exec.holds(2, 1) }) {
		t.FailNow()
	}
	waitFor(t, "the manager waits for the next registry change", func() bool { return src.takes() >= 2 })

	// Move 1 away: its release begins and is held open.
	src.set(p(1, 0, 4, "n2", 2), p(2, 4, 8, "n1", 1))
	select {
	case <-exec.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the release of partition 1 did not begin within 30s")
	}
	// While it is held: 1 moves back (epoch 4), 2 is updated (epoch 3) and 3 is added.
	back := p(1, 0, 4, "n1", 4)
	src.set(back, p(2, 4, 8, "n1", 3), p(3, 8, 12, "n1", 4))
	waitFor(t, "the routing table shows the newest view while a release is held", func() bool {
		v := routed.Load()
		return v != nil && v.Partitions[1].Epoch == 4
	})
	waitFor(t, "partition 2 updated and partition 3 opened while partition 1's release is held", func() bool {
		return exec.holds(2, 3) && exec.holds(3, 4)
	})
	if exec.holds(1, 4) {
		t.Error("partition 1 opened at its new epoch before its old release ended")
	}
	release()
	waitFor(t, "partition 1 open at epoch 4 after its release ended", func() bool { return exec.holds(1, 4) })
	exec.mu.Lock()
	defer exec.mu.Unlock()
	if len(exec.overlap) > 0 {
		t.Errorf("ops on one partition overlapped: %v", exec.overlap)
	}
	t.Logf("ops: %v", exec.log)
}

// An owner whose entry changes only in its standbys, pin or placement keeps
// serving: no op reopens it (a rebalance adds a standby to warm up on its
// target, and an owner reopened for that stopped serving while it
// restored; so did one whose standby was replaced by a failover).
func TestAnOwnersStandbysChangeReopensNothing(t *testing.T) {
	p := registry.Partition{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Owner: "n1", Epoch: 3}
	q := p
	q.Standbys, q.Pinned, q.Placed = []string{"n2"}, true, registry.PlacedByOperator
	q.Moving = &registry.Moving{To: "n2", Added: true}
	if ops := delta(map[uint32]want{1: {p, owner}}, map[uint32]want{1: {q, owner}}); len(ops) != 0 {
		t.Fatalf("a standby added to an owner's entry gave ops %v", ops)
	}
	q.Epoch = 4
	if ops := delta(map[uint32]want{1: {p, owner}}, map[uint32]want{1: {q, owner}}); len(ops) != 1 || ops[0].kind != "update" {
		t.Fatalf("a new epoch gave ops %v, want an update", ops)
	}
}
