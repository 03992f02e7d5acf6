// Package membership is a node's seat in its cluster's Kafka group,
// <cluster>.members: which nodes are live, and which one of them decides
// placement (the failover decider).
//
// It uses Kafka's classic group protocol with a client-side balancer
// (franz-go's kgo.GroupBalancer), not KIP-848's consumer protocol: in the
// classic protocol the coordinator hands every member's metadata to one
// member, the group leader, whose balancer computes the assignment, and
// that is the hook sluice needs — the leader names the decider and the live
// set and every member receives them in its assignment. KIP-848 moves
// assignment to the broker (its client-side assignors are not implemented
// by Kafka or franz-go) and has no leader, so it gives no such hook; its
// minimum session timeout (group.consumer.min.session.timeout.ms, 45 s by
// default) is also far above what fast failover needs.
//
// Members are static (kgo.InstanceID = node id, KIP-345): a node that
// restarts within the session timeout rejoins under its old identity with
// no rebalance, and a node that stops never sends LeaveGroup, so only the
// session timeout takes a member out (a graceful stop is a restart to be).
//
// The group assigns no Kafka partitions: it subscribes to the registry
// topic only because a classic consumer group needs a subscription.
package membership

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/registry"
)

// Config says which group to join and as whom.
type Config struct {
	// Client are the options of every Kafka client of the node (brokers,
	// TLS, SASL).
	Client []kgo.Opt
	// Group is the group's name, <cluster>.members.
	Group string
	// Topic is the topic the group subscribes to (the registry's); it is
	// never fetched.
	Topic string
	// Node is this node's id: the member's static instance id.
	Node string
	// Auto: this node may decide placement (--failover auto). A node of
	// --failover manual is a member (the others see it live) that never
	// decides.
	Auto bool
	// SessionTimeout is how long the group waits for a silent member before
	// taking it out (--session-timeout).
	SessionTimeout time.Duration
	Log            zerolog.Logger
}

// protocolType is the group's protocol type (JoinGroup's ProtocolType).
const protocolType = "sluice-membership"

// Session is one generation of the group as this member got it.
type Session struct {
	Generation int32
	MemberID   string
	// Decider is the node that decides placement in this generation, ""
	// when no member runs --failover auto.
	Decider string
	// Members are the nodes in the group, sorted.
	Members []string
}

// Live is the set of member nodes.
func (s Session) Live() map[string]bool {
	m := make(map[string]bool, len(s.Members))
	for _, n := range s.Members {
		m[n] = true
	}
	return m
}

// Member is this node's membership.
type Member struct {
	cfg Config
	cl  atomic.Pointer[kgo.Client]

	mu      sync.Mutex
	session *Session // nil between generations
	changed chan struct{}
}

// Join starts the node's membership; it returns at once, and the first
// session comes once the group has balanced.
func Join(cfg Config) (*Member, error) {
	if cfg.SessionTimeout <= 0 {
		return nil, fmt.Errorf("membership: a session timeout above zero is needed")
	}
	m := &Member{cfg: cfg, changed: make(chan struct{})}
	b := &balancer{m: m}
	opts := append(slices.Clone(cfg.Client),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// Not "consumer": Kafka's group coordinator parses a "consumer"
		// group's member metadata as a consumer subscription (to convert
		// the group to KIP-848's protocol), and ours is not one.
		kgo.GroupProtocol(protocolType),
		kgo.InstanceID(cfg.Node),
		kgo.Balancers(b),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		// A third of the session (Kafka's advice: a member survives two
		// lost heartbeats), at most a second: every member hears of a
		// rebalance (a node gone, one joining) at its next heartbeat, and
		// the new generation waits for all of them.
		kgo.HeartbeatInterval(min(cfg.SessionTimeout/3, time.Second)),
		kgo.RebalanceTimeout(cfg.SessionTimeout),
		kgo.OnPartitionsRevoked(m.ended),
		kgo.OnPartitionsLost(m.ended),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	m.cl.Store(cl)
	return m, nil
}

// Session returns this member's current session, false between generations.
func (m *Member) Session() (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session == nil {
		return Session{}, false
	}
	return *m.session, true
}

// First waits for this member's first generation (or any later one).
func (m *Member) First(ctx context.Context) (Session, error) {
	for {
		ch := m.Changed()
		if s, ok := m.Session(); ok {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Session{}, fmt.Errorf("membership: no generation of group %s yet: %w", m.cfg.Group, context.Cause(ctx))
		}
	}
}

// Changed returns a channel closed at the next change of the session.
func (m *Member) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Fence is the group membership a registry write decided in s is made
// under (registry.GroupFence): refused once s's generation has passed.
func (m *Member) Fence(s Session) *registry.GroupFence {
	id := m.cfg.Node
	return &registry.GroupFence{Group: m.cfg.Group, MemberID: s.MemberID, InstanceID: &id, Generation: s.Generation}
}

// Close stops taking part in the group without leaving it: as a static
// member, the node stays in the group until its session times out, so a
// restart within it changes nothing.
func (m *Member) Close() {
	m.cl.Load().Close()
}

func (m *Member) set(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.session = s
	close(m.changed)
	m.changed = make(chan struct{})
}

// ended is called by franz-go as a generation ends (a rebalance begins, or
// the member lost its place in the group).
func (m *Member) ended(context.Context, *kgo.Client, map[string][]int32) {
	m.set(nil)
}

// joinMeta is what a member tells the group leader when it joins.
type joinMeta struct {
	Node string `json:"node"`
	Auto bool   `json:"auto,omitempty"`
}

// assignment is what the leader gives every member: the same for all.
type assignment struct {
	Decider string   `json:"decider,omitempty"`
	Members []string `json:"members"`
}

// decide is the leader's rule: it decides itself if it runs --failover
// auto, else the auto member with the smallest node id; no one if none does.
func decide(leader joinMeta, members []joinMeta) assignment {
	a := assignment{}
	for _, j := range members {
		a.Members = append(a.Members, j.Node)
		if j.Auto && (a.Decider == "" || j.Node < a.Decider) {
			a.Decider = j.Node
		}
	}
	if leader.Auto {
		a.Decider = leader.Node
	}
	slices.Sort(a.Members)
	a.Members = slices.Compact(a.Members)
	return a
}

// balancer is the group's client-side balancer: the group leader's runs
// decide; every member parses the result.
type balancer struct{ m *Member }

func (b *balancer) ProtocolName() string { return "sluice-members-v1" }
func (b *balancer) IsCooperative() bool  { return false }

func (b *balancer) JoinGroupMetadata([]string, map[string][]int32, int32) []byte {
	out, _ := json.Marshal(joinMeta{Node: b.m.cfg.Node, Auto: b.m.cfg.Auto})
	return out
}

func (b *balancer) ParseSyncAssignment(raw []byte) (map[string][]int32, error) {
	var a assignment
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("membership: the group leader's assignment does not decode: %w", err)
	}
	// The join that began this generation stored its member id and
	// generation before the sync whose answer this is.
	memberID, gen := b.client().GroupMetadata()
	b.m.set(&Session{Generation: gen, MemberID: memberID, Decider: a.Decider, Members: a.Members})
	b.m.cfg.Log.Info().Str("group", b.m.cfg.Group).Int32("generation", gen).Str("decider", a.Decider).Strs("members", a.Members).Msg("membership: a new generation of the group")
	return map[string][]int32{}, nil
}

// client waits for Join to have stored the client (the first sync needs
// network round trips, so this is at most a moment).
func (b *balancer) client() *kgo.Client {
	for {
		if cl := b.m.cl.Load(); cl != nil {
			return cl
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	metas := make([]joinMeta, len(members))
	for i, mem := range members {
		if err := json.Unmarshal(mem.ProtocolMetadata, &metas[i]); err != nil || metas[i].Node == "" {
			return nil, nil, fmt.Errorf("membership: member %s joined with metadata that does not name a node: %q", mem.MemberID, mem.ProtocolMetadata)
		}
	}
	self := joinMeta{Node: b.m.cfg.Node, Auto: b.m.cfg.Auto}
	return &plan{members: members, a: decide(self, metas)}, map[string]struct{}{b.m.cfg.Topic: {}}, nil
}

// plan is the leader's assignment for one generation.
type plan struct {
	members []kmsg.JoinGroupResponseMember
	a       assignment
}

func (p *plan) Balance(map[string]int32) kgo.IntoSyncAssignment { return p }

func (p *plan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	raw, _ := json.Marshal(p.a)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, len(p.members))
	for i, mem := range p.members {
		out[i] = kmsg.SyncGroupRequestGroupAssignment{MemberID: mem.MemberID, MemberAssignment: raw}
	}
	return out
}
