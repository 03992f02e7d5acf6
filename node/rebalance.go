package node

import (
	"context"
	"time"

	"github.com/sluicedb/sluice/membership"
	"github.com/sluicedb/sluice/registry"
)

// rebalanceMaxLag is how far (changelog offsets) a rebalance's warm-up
// standby may be behind the log's committed end and count as caught up:
// its promotion then replays at most that much before it serves.
const rebalanceMaxLag = 1000

// rebalance writes the next step of rebalancing (registry/rebalance.go)
// under s's generation, if there is one: moves begun (their targets start a
// standby), moves finished (their standby caught up: it becomes the owner
// at a new epoch), moves stopped. waiting says a move under way waits for
// its standby to catch up.
func (n *Node) rebalance(s membership.Session, live map[string]bool) (waiting bool, err error) {
	v := n.registry.View()
	behind := n.warmupLags(v)
	caughtUp := func(p registry.Partition, to string) bool {
		b, ok := behind[p.ID]
		return ok && b >= 0 && b <= rebalanceMaxLag
	}
	decisions, _ := v.Rebalance(live, n.cfg.MaxConcurrentMoves, caughtUp)
	if len(decisions) > 0 {
		ctx, cancel := n.decisionCtx()
		defer cancel()
		err = n.registry.UpdateFenced(ctx, n.member.Fence(s), func(v *registry.View) ([]registry.Mutation, error) {
			var muts []registry.Mutation
			decisions, muts = v.Rebalance(live, n.cfg.MaxConcurrentMoves, caughtUp)
			return muts, nil
		})
		if err != nil {
			return false, err
		}
	}
	for _, d := range decisions {
		ev := n.cfg.Log.Warn().Uint32("partition", d.ID).Str("from", d.From).Str("to", d.To).Int32("generation", s.Generation)
		switch {
		case d.Cancel != "":
			ev.Str("reason", d.Cancel).Msgf("rebalance: partition %d no longer moves to %s: %s", d.ID, d.To, d.Cancel)
		case d.Epoch == 0:
			ev.Msgf("rebalance: partition %d moves from %s to %s, which first keeps a standby of it", d.ID, d.From, d.To)
		default:
			n.failoverMoves.WithLabelValues(registry.CauseRebalance).Inc()
			ev.Uint64("epoch", d.Epoch).Int64("behind", behind[d.ID]).Msgf("rebalance: partition %d goes from %s to %s, whose standby caught up", d.ID, d.From, d.To)
		}
	}
	for _, p := range n.registry.View().Partitions {
		if p.Moving != nil {
			return true, nil
		}
	}
	return false, nil
}

// warmupLags asks the target of every rebalance under way in v how far its
// standby is behind the changelog: by partition, -1 when it is not known
// (the node did not answer, or keeps no standby of it yet).
func (n *Node) warmupLags(v *registry.View) map[uint32]int64 {
	targets := map[string][]uint32{}
	for _, p := range v.Partitions {
		if p.Moving != nil {
			targets[p.Moving.To] = append(targets[p.Moving.To], p.ID)
		}
	}
	out := map[uint32]int64{}
	for to, ids := range targets {
		for _, id := range ids {
			out[id] = -1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		standbys, err := n.control.PeerStandbys(ctx, to)
		cancel()
		if err != nil {
			n.cfg.Log.Debug().Err(err).Str("node", to).Msg("rebalance: asking a target for its standbys failed")
			continue
		}
		for _, sb := range standbys {
			if _, ok := out[sb.Id]; ok {
				out[sb.Id] = sb.Behind
			}
		}
	}
	return out
}
