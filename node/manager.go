package node

import (
	"sync"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/registry"
)

// source is the registry as the partition manager reads it.
type source interface {
	View() *registry.View
	// Changed returns a channel closed at the next change of the view.
	Changed() <-chan struct{}
}

// executor carries out the manager's ops on the node's partitions. The node
// is the one in use (partitions.go); tests hold one whose calls block.
type executor interface {
	open(spec registry.Partition, asStandby bool) error
	release(id uint32, wipe bool)
	promote(spec registry.Partition) error
	// respec records a standby's new registry entry that needs no op.
	respec(spec registry.Partition)
}

// manager is the partition manager: on every registry change it reconciles
// what the node holds with what the registry assigns it.
type manager struct {
	node  string
	src   source
	exec  executor
	route func(*registry.View) // updates the routing table
	log   zerolog.Logger
	stop  <-chan struct{}

	mu     sync.Mutex
	target map[uint32]want // what the node holds once every queued op has run
	// queues holds each partition's ops not yet begun. A partition with a
	// queue (even an empty one) has a worker running its ops one at a time:
	// a slow op (a release draining a transaction) delays only later ops of
	// the same partition.
	queues  map[uint32][]op
	workers sync.WaitGroup
}

func newManager(node string, src source, exec executor, route func(*registry.View), log zerolog.Logger, stop <-chan struct{}) *manager {
	return &manager{node: node, src: src, exec: exec, route: route, log: log, stop: stop, target: map[uint32]want{}, queues: map[uint32][]op{}}
}

// manage runs the node's partition manager until the node stops.
func (n *Node) manage() {
	defer n.wg.Done()
	n.mgr.run()
}

// run reconciles on every registry change until stop, then waits for the
// ops already begun.
func (m *manager) run() {
	defer m.workers.Wait()
	for {
		// The signal is taken before reconcile reads the view: a change that
		// lands after the read closes this channel, so it is never lost. (It
		// was once taken after the reconcile, which waited for releases; a
		// partition moved back meanwhile stayed unserved.)
		changed := m.src.Changed()
		m.reconcile(nil)
		select {
		case <-m.stop:
			return
		case <-changed:
		}
	}
}

// role is what this node is for a partition.
type role uint8

const (
	owner role = iota + 1
	standby
)

// want is a partition this node holds or should hold, and as what.
type want struct {
	spec registry.Partition
	role role
}

// op is one step of a reconcile.
type op struct {
	kind string // add, del, update, promote, demote, standby (and respec, which delta never returns)
	spec registry.Partition
}

// delta computes the ops that take current to desired: Add what is assigned
// and not held, Del what is held and not assigned, Update an owned partition
// whose entry changed (epoch, range), Promote a standby that became the owner
// (it replays only the tail), Demote an owner that keeps a standby, Standby a
// new standby.
func delta(current, desired map[uint32]want) []op {
	var ops []op
	for id, c := range current {
		d, ok := desired[id]
		switch {
		case !ok:
			ops = append(ops, op{"del", c.spec})
		case c.role == standby && d.role == owner:
			ops = append(ops, op{"promote", d.spec})
		case c.role == owner && d.role == standby:
			ops = append(ops, op{"demote", d.spec})
		case d.role == owner && !sameOwnership(d.spec, c.spec):
			ops = append(ops, op{"update", d.spec})
		case d.role == standby && d.spec.Range != c.spec.Range:
			ops = append(ops, op{"del", c.spec}, op{"standby", d.spec})
		}
	}
	for id, d := range desired {
		if _, ok := current[id]; !ok {
			kind := "add"
			if d.role == standby {
				kind = "standby"
			}
			ops = append(ops, op{kind, d.spec})
		}
	}
	return ops
}

// sameOwnership reports whether a and b give the partition the same owner,
// epoch and slots: an owner opened for a serves b (its standbys, pin and
// placement may differ).
func sameOwnership(a, b registry.Partition) bool {
	return a.Owner == b.Owner && a.Epoch == b.Epoch && a.Range == b.Range
}

// reconcile brings the routing table in line with the registry and queues
// the ops that bring the held partitions in line; it never waits for an op.
// onStart, if set, sees what is desired before any op is queued.
func (m *manager) reconcile(onStart func(desired map[uint32]want)) {
	v := m.src.View()
	m.route(v)
	desired := map[uint32]want{}
	for _, p := range v.Partitions {
		switch {
		case p.Owner == m.node:
			desired[p.ID] = want{p, owner}
		case p.HasStandby(m.node):
			desired[p.ID] = want{p, standby}
		}
	}
	if onStart != nil {
		onStart(desired)
	}
	m.mu.Lock()
	ops := delta(m.target, desired)
	// A standby's entry may change (a new epoch, other standbys) without any
	// op, and so may an owner's standbys: a rebalance adds one to warm up
	// (an owner reopened for it stopped serving while it restored).
	for id, d := range desired {
		c, ok := m.target[id]
		if !ok || c.role != d.role || d.spec.Range != c.spec.Range || d.spec.Equal(c.spec) {
			continue
		}
		if d.role == standby || sameOwnership(d.spec, c.spec) {
			ops = append(ops, op{"respec", d.spec})
		}
	}
	m.target = desired
	for _, o := range ops {
		m.log.Info().Str("op", o.kind).Uint32("partition", o.spec.ID).Uint64("epoch", o.spec.Epoch).Stringer("range", o.spec.Range).Int("waiting", len(m.queues[o.spec.ID])).Msg("partition manager")
		m.enqueue(o)
	}
	m.mu.Unlock()
}

// enqueue adds o to its partition's queue, starting the partition's worker if
// none runs. m.mu is held.
func (m *manager) enqueue(o op) {
	id := o.spec.ID
	q, running := m.queues[id]
	m.queues[id] = append(q, o)
	if !running {
		m.workers.Add(1)
		go m.work(id)
	}
}

// work runs partition id's ops in order until its queue is empty (or the
// node stops: ops not begun are dropped, the node closes what it holds).
func (m *manager) work(id uint32) {
	defer m.workers.Done()
	for {
		m.mu.Lock()
		q := m.queues[id]
		if len(q) == 0 || m.stopped() {
			delete(m.queues, id)
			m.mu.Unlock()
			return
		}
		o := q[0]
		m.queues[id] = q[1:]
		m.mu.Unlock()
		if err := m.do(o); err != nil {
			m.log.Error().Err(err).Str("op", o.kind).Uint32("partition", id).Uint64("epoch", o.spec.Epoch).Msg("partition manager: op failed; the partition is not held")
			m.mu.Lock()
			if t, ok := m.target[id]; ok && sameOwnership(t.spec, o.spec) && len(m.queues[id]) == 0 {
				delete(m.target, id) // the next reconcile adds it again
			}
			m.mu.Unlock()
		}
	}
}

func (m *manager) stopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// do carries out one op.
func (m *manager) do(o op) error {
	switch o.kind {
	case "del":
		m.exec.release(o.spec.ID, true)
	case "update", "demote":
		m.exec.release(o.spec.ID, false)
		return m.exec.open(o.spec, o.kind == "demote")
	case "promote":
		return m.exec.promote(o.spec)
	case "add":
		return m.exec.open(o.spec, false)
	case "standby":
		return m.exec.open(o.spec, true)
	case "respec":
		m.exec.respec(o.spec)
	}
	return nil
}
