package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicedb/sluice/membership"
	"github.com/sluicedb/sluice/registry"
)

// Automatic failover: every node is a member of the <cluster>.members Kafka
// group (membership/); the member the group leader names decides. When a
// node leaves the group (its session timed out: it crashed, hangs, or is cut
// off), the decider gives each of its partitions to a live standby of it
// (promoted in place) or to the least loaded live node (registry.View.Heal),
// writing through the registry like the control plane, in a transaction that
// Kafka refuses if the decider's generation has passed (registry.GroupFence).

// Failover modes (--failover).
const (
	FailoverAuto   = "auto"
	FailoverManual = "manual"
)

// DefaultSessionTimeout is the default --session-timeout: see the README's
// "Several nodes" for the measurements it was chosen from.
const DefaultSessionTimeout = 8 * time.Second

// The session timeout's bounds: Kafka's group.min.session.timeout.ms and
// group.max.session.timeout.ms defaults (a broker refuses a member outside
// its own).
const (
	MinSessionTimeout = 6 * time.Second
	MaxSessionTimeout = 30 * time.Minute
)

func (c *Config) checkFailover() error {
	switch c.Failover {
	case FailoverAuto, FailoverManual:
	default:
		return fmt.Errorf("node: --failover %q is neither %s nor %s", c.Failover, FailoverAuto, FailoverManual)
	}
	if c.MaxConcurrentMoves < 1 {
		return fmt.Errorf("node: --max-concurrent-moves %d: at least 1", c.MaxConcurrentMoves)
	}
	if c.SessionTimeout < MinSessionTimeout || c.SessionTimeout > MaxSessionTimeout {
		return fmt.Errorf("node: --session-timeout %v is outside %v to %v (Kafka's group.min/max.session.timeout.ms defaults)", c.SessionTimeout, MinSessionTimeout, MaxSessionTimeout)
	}
	return nil
}

// membersGroup is the cluster's membership group.
func (n *Node) membersGroup() string { return n.cfg.Cluster + ".members" }

// joinMembers makes this node a member of its cluster's group and waits
// (a session timeout at most) for its first generation. The node announces
// itself in the registry only after: a node the registry names that is not
// a member has left (or never came back), so the decider needs no grace
// for nodes it has not seen yet. A group that does not answer in time is
// logged, and the node starts anyway (a decider may then count it gone).
func (n *Node) joinMembers(ctx context.Context) error {
	m, err := membership.Join(membership.Config{
		Client: n.kafkaOpts(), Group: n.membersGroup(), Topic: n.topics.Registry(), Node: n.cfg.NodeID,
		Auto: n.cfg.Failover == FailoverAuto, SessionTimeout: n.cfg.SessionTimeout, Log: n.cfg.Log,
	})
	if err != nil {
		return fmt.Errorf("node: joining group %s: %w", n.membersGroup(), err)
	}
	n.member = m
	began := time.Now()
	wait, cancel := context.WithTimeout(ctx, n.cfg.SessionTimeout)
	defer cancel()
	if s, err := m.First(wait); err != nil {
		n.cfg.Log.Warn().Err(err).Str("group", n.membersGroup()).Msg("membership: no generation of the group yet; starting anyway")
	} else {
		n.cfg.Log.Info().Str("group", n.membersGroup()).Int32("generation", s.Generation).Strs("members", s.Members).Dur("took", time.Since(began)).Msg("membership: joined")
	}
	return nil
}

// newFailoverMetric counts the partitions the decider placed, by cause.
func newFailoverMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_failover_moves_total",
		Help: "Partitions this node, as the placement decider, gave a new owner, by cause (promote-standby, move-least-loaded, rebalance).",
	}, []string{"cause"})
	reg.MustRegister(c)
	return c
}

// decider is the failover decider's state.
type decider struct {
	deciding bool
	paused   bool              // automatic placement was paused when last seen (logged once)
	stuck    map[uint32]string // partitions no live node can take, and why (logged once)
}

// decide runs the placement decider until the node stops: whenever this
// node is the group's decider, at every new generation and registry change,
// it heals the registry (failover.go's top), then rebalances it
// (rebalance.go), asking again every second while a rebalance waits for a
// standby to catch up. The live nodes are the members of the generation: a
// node announces itself only once it is a member (joinMembers), so an
// announced node that is not one has left.
func (n *Node) decide() {
	defer n.wg.Done()
	d := &decider{stuck: map[uint32]string{}}
	var retry <-chan time.Time
	for {
		memberCh, regCh := n.member.Changed(), n.registry.Changed()
		s, ok := n.member.Session()
		retry = nil
		switch {
		case !ok:
			// Between generations: nothing to decide.
		case s.Decider == n.cfg.NodeID && n.cfg.Failover == FailoverAuto:
			if !d.deciding {
				d.deciding = true
				n.cfg.Log.Info().Int32("generation", s.Generation).Strs("members", s.Members).Msg("failover: this node decides placement")
			}
			if paused := n.registry.View().Paused; paused != d.paused {
				d.paused = paused
				n.cfg.Log.Warn().Bool("paused", paused).Msg("failover: automatic placement paused or resumed by an operator (sluice cluster auto)")
			}
			again, err := n.place(s, d)
			switch {
			case errors.Is(err, registry.ErrStaleMember):
				n.cfg.Log.Info().Err(err).Msg("failover: a new generation began; the next one decides")
			case err != nil:
				n.cfg.Log.Warn().Err(err).Msg("failover: writing the registry failed; retrying in 1s")
				retry = time.After(time.Second)
			case again:
				retry = time.After(time.Second)
			}
		case d.deciding:
			d.deciding = false
			n.cfg.Log.Info().Str("decider", s.Decider).Msg("failover: this node no longer decides placement")
		}
		select {
		case <-n.stop:
			return
		case <-memberCh:
		case <-regCh:
		case <-retry:
		}
	}
}

// place heals the registry under s's generation, and once nothing needs
// healing, rebalances it. again says a rebalance waits for a standby to
// catch up: the decider asks again in a second.
func (n *Node) place(s membership.Session, d *decider) (again bool, err error) {
	live := s.Live()
	healed, err := n.heal(s, live, d)
	if err != nil || healed || !n.cfg.Rebalance {
		return false, err
	}
	return n.rebalance(s, live)
}

// decisionCtx bounds one registry write of the decider, and ends when the
// node stops.
func (n *Node) decisionCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.SessionTimeout+30*time.Second)
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// heal writes the failover decisions the registry needs, if any, under s's
// generation, and reports whether it wrote any.
func (n *Node) heal(s membership.Session, live map[string]bool, d *decider) (bool, error) {
	decisions, _, stuck := n.registry.View().Heal(live)
	for id, err := range stuck {
		if d.stuck[id] != err.Error() {
			d.stuck[id] = err.Error()
			n.cfg.Log.Warn().Err(err).Uint32("partition", id).Msg("failover: the partition's owner left, but no live node can take it; it keeps its owner")
		}
	}
	if len(decisions) == 0 {
		return false, nil
	}
	ctx, cancel := n.decisionCtx()
	defer cancel()
	err := n.registry.UpdateFenced(ctx, n.member.Fence(s), func(v *registry.View) ([]registry.Mutation, error) {
		var muts []registry.Mutation
		decisions, muts, _ = v.Heal(live)
		return muts, nil
	})
	if err != nil {
		return false, err
	}
	for _, f := range decisions {
		delete(d.stuck, f.ID)
		n.failoverMoves.WithLabelValues(f.Cause).Inc()
		n.cfg.Log.Warn().Uint32("partition", f.ID).Uint64("epoch", f.Epoch).Str("from", f.From).Str("to", f.To).Str("cause", f.Cause).
			Strs("standbys", f.Standbys).Int32("generation", s.Generation).Strs("members", s.Members).
			Msgf("failover: node %s left the group; partition %d goes to %s (%s)", f.From, f.ID, f.To, f.Cause)
	}
	return len(decisions) > 0, nil
}
