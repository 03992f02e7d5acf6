package partition

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/sluicedb/sluice/partition/core"
)

// A partition's state, as everything outside its loop reads it, is one
// immutable value (State) published at every change: Serving, Status,
// Gauges and the error a partition that does not serve answers with all
// derive from it, with one atomic load. The loop publishes the core's
// state after every Ready (effects.go, Carried) and Stopped when it has
// shut down; the restore under way publishes its steps and progress
// (restore.go); Close publishes Closing for a partition that is not
// serving; a store read that finds corruption records it (corrupt.go).

// Phase is where a partition is in its life. The restoring phases are the
// steps of a restore, in order; String gives the word the outside sees.
type Phase uint8

const (
	// RestoreDue: a restore is to begin (at the start, or a re-sync that
	// waits for the store writes under way).
	RestoreDue Phase = iota
	// RestoreRegistry: confirming in the registry that this node owns the
	// partition at its epoch (Config.Owns).
	RestoreRegistry
	// RestoreSnapshot: checking the store (found corrupt, too stale to
	// replay onto) and filling an empty one from a snapshot (Config.Seed).
	RestoreSnapshot
	// RestoreFence: fencing every older writer of the slots, then its own
	// producer; ownership is confirmed again.
	RestoreFence
	// RestoreReplay: replaying the log into the store (Percent, Lag,
	// Waiting).
	RestoreReplay
	// RestoreLeaseWait: restored; waiting out a deposed owner's read lease
	// before serving.
	RestoreLeaseWait
	// Serving: taking requests.
	Serving
	// Closing: a graceful close (or a stop) is under way.
	Closing
	// Deposed: a newer owner has the partition; it never serves again.
	Deposed
	// Stopped: the partition's goroutine ended; its store is closed.
	Stopped
)

// Restoring reports whether ph is a step of a restore.
func (ph Phase) Restoring() bool { return ph <= RestoreLeaseWait }

// String is the phase as the outside sees it (the state label of
// sluice_partition_state, Gauges.State): "restoring" for every step of a
// restore, then "serving", "closing", "deposed", "stopped".
func (ph Phase) String() string {
	switch {
	case ph.Restoring():
		return "restoring"
	case ph == Serving:
		return "serving"
	case ph == Closing:
		return "closing"
	case ph == Deposed:
		return "deposed"
	case ph == Stopped:
		return "stopped"
	}
	return "unknown"
}

// Step names the phase as the partition's log lines do ("phase"): a
// restore's step ("registry", "snapshot", "fence", "replay", "lease wait",
// or "due" before it begins), else String.
func (ph Phase) Step() string {
	switch ph {
	case RestoreDue:
		return "due"
	case RestoreRegistry:
		return "registry"
	case RestoreSnapshot:
		return "snapshot"
	case RestoreFence:
		return "fence"
	case RestoreReplay:
		return "replay"
	case RestoreLeaseWait:
		return "lease wait"
	}
	return ph.String()
}

// State is a partition's state at one instant. A published State is never
// changed: a change publishes a new one.
type State struct {
	Phase Phase
	// Epoch is the partition's epoch.
	Epoch uint64
	// Percent of the restore's replay done; 100 once serving.
	Percent int
	// Lag is the log offsets left to replay while restoring.
	Lag int64
	// Waiting is what a restore that made no progress for a while waits
	// for (a slot of the log and its offsets), or why it cannot succeed
	// (a corrupt store that is the log); "" once serving.
	Waiting string
	// Err is what ended the partition for good: a newer owner's takeover
	// (it wraps ErrDeposed). It stays once the partition has stopped.
	Err error
	// corrupt is the read that found the store corrupt, until a restore
	// empties the store (corrupt.go).
	corrupt error
}

// Serving reports whether the partition serves.
func (s State) Serving() bool { return s.Phase == Serving }

// Deposed reports whether a newer owner took the partition over.
func (s State) Deposed() bool { return errors.Is(s.Err, ErrDeposed) }

// published holds a partition's State. Readers load it with one atomic
// load; writers (the loop, the restore under way, Close, a read that found
// corruption) take turns under mu, each publishing a changed copy.
type published struct {
	mu  sync.Mutex
	cur atomic.Pointer[State]
}

func (pb *published) init(s State) { pb.cur.Store(&s) }

// load returns the current State, which the caller must not change.
func (pb *published) load() *State { return pb.cur.Load() }

// update publishes a copy of the current State as change leaves it, if
// change reports that it changed it.
func (pb *published) update(change func(s *State) bool) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	next := *pb.cur.Load()
	if change(&next) {
		pb.cur.Store(&next)
	}
}

// restoring changes the State of a restoring partition only: a step of a
// restore that a close or a takeover overtook publishes nothing.
func (pb *published) restoring(change func(s *State)) {
	pb.update(func(s *State) bool {
		if !s.Phase.Restoring() {
			return false
		}
		change(s)
		return true
	})
}

// Status reports the partition's state. Safe from any goroutine.
func (p *Partition) Status() State { return *p.state.load() }

// Serving reports whether the partition has restored and serves: one
// atomic load, on every request.
func (p *Partition) Serving() bool { return p.state.load().Phase == Serving }

// enter publishes step ph of the restore under way.
func (p *Partition) enter(ph Phase) {
	p.state.restoring(func(s *State) { s.Phase = ph })
}

// waitingFor records what the restore under way waits for (a slot, an
// offset), for Status and the node's sluice_partition_restore_waiting gauge;
// "" clears it. Safe from any goroutine.
func (p *Partition) waitingFor(what string) {
	p.state.restoring(func(s *State) { s.Waiting = what })
}

// unavailable is the error of a request the partition cannot take now, as
// its published state says.
func (p *Partition) unavailable() error {
	st := p.state.load()
	switch {
	case st.Phase == Closing || st.Phase == Stopped:
		return ErrStopped
	case st.Err != nil:
		return st.Err
	}
	return &RestoringError{Partition: p.cfg.ID, Percent: st.Percent, Waiting: st.Waiting}
}

// publishCore publishes the phase the core's state implies after a Ready,
// if it changed: the check is one atomic load, the common case.
func (l *loop) publishCore() {
	p := l.p
	if cur := p.state.load(); l.phase(cur) == cur.Phase {
		return
	}
	var now Phase
	p.state.update(func(s *State) bool {
		next := l.phase(s)
		if next == s.Phase {
			return false
		}
		now = next
		s.Phase = next
		switch next {
		case Serving:
			s.Percent, s.Lag, s.Waiting = 100, 0, ""
		case Deposed:
			s.Err = l.core.Deposed()
		}
		return true
	})
	switch now {
	case Serving:
		l.servingNow()
	case Deposed:
		p.cfg.Log.Warn().Err(l.core.Deposed()).Msg("partition deposed: not serving")
	}
}

// phase is the phase the core's state implies, from the published s.
func (l *loop) phase(s *State) Phase {
	switch l.core.State() {
	case core.Serving:
		return Serving
	case core.Closing:
		return Closing
	case core.Deposed:
		return Deposed
	case core.Stopped:
		if s.Phase == Deposed {
			return Deposed // until the loop has shut down
		}
		return Closing // shutting down
	}
	// The core restores.
	switch {
	case s.Phase == Serving:
		return RestoreDue // a re-sync begins
	case !s.Phase.Restoring():
		return s.Phase // closing already (Close)
	case !l.phases.restored.IsZero():
		return RestoreLeaseWait // the restore's result reached the core
	}
	return s.Phase // the restore publishes its own steps
}

// restoreBegins publishes the start of a restore (the loop's, before the
// restore's goroutine starts): its progress starts over.
func (p *Partition) restoreBegins() {
	p.state.update(func(s *State) bool {
		if s.Phase != Serving && !s.Phase.Restoring() {
			return false
		}
		s.Phase, s.Percent, s.Lag, s.Waiting = RestoreDue, 0, 0, ""
		return true
	})
}

// publishStopped publishes the end of the loop: the store is closed.
func (p *Partition) publishStopped() {
	p.state.update(func(s *State) bool {
		s.Phase = Stopped
		return true
	})
}

// closeAsked publishes Closing for a partition that Close was called on
// while restoring: from now on it answers ErrStopped. A serving one closes
// when its loop takes the close (Carried).
func (p *Partition) closeAsked() {
	p.state.restoring(func(s *State) { s.Phase = Closing })
}
