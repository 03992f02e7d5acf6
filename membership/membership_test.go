package membership

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/topics"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// The broker's smallest session timeout (group.min.session.timeout.ms).
const session = 6 * time.Second

type group struct {
	t      *testing.T
	opts   []kgo.Opt
	topics topics.Names
}

func newGroup(t *testing.T) group {
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tp := topics.Names{Cluster: kafkatest.ClusterName(t)}
	if _, err := topics.EnsureAll(context.Background(), cl, tp, 4, 1); err != nil {
		t.Fatal(err)
	}
	return group{t: t, opts: opts, topics: tp}
}

func (g group) join(node string, auto bool) *Member {
	g.t.Helper()
	m, err := Join(Config{Client: g.opts, Group: g.topics.Cluster + ".members", Topic: g.topics.Registry(), Node: node, Auto: auto, SessionTimeout: session,
		Log: zerolog.New(zerolog.NewTestWriter(g.t)).Level(zerolog.WarnLevel)})
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

// await waits (60 s at most) for m's session to satisfy ok and returns it.
func await(t *testing.T, m *Member, what string, ok func(Session) bool) Session {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := m.Changed()
		if s, in := m.Session(); in && ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			s, in := m.Session()
			t.Fatalf("%s: not within 60 s (session %+v, in a generation: %v)", what, s, in)
		}
	}
}

func members(want ...string) func(Session) bool {
	return func(s Session) bool { return slices.Equal(s.Members, want) }
}

func TestDecideNamesOneAutoMember(t *testing.T) {
	a := decide(joinMeta{Node: "n2", Auto: false}, []joinMeta{{Node: "n3", Auto: true}, {Node: "n2"}, {Node: "n4", Auto: true}})
	if a.Decider != "n3" || !slices.Equal(a.Members, []string{"n2", "n3", "n4"}) {
		t.Fatalf("a manual leader: %+v, want the smallest auto member n3", a)
	}
	if a := decide(joinMeta{Node: "n4", Auto: true}, []joinMeta{{Node: "n3", Auto: true}, {Node: "n4", Auto: true}}); a.Decider != "n4" {
		t.Fatalf("an auto leader: %+v, want itself", a)
	}
	if a := decide(joinMeta{Node: "n1"}, []joinMeta{{Node: "n1"}, {Node: "n2"}}); a.Decider != "" {
		t.Fatalf("no auto member: %+v, want no decider", a)
	}
}

// Every member sees the same generation: the same members, one decider.
// A member that stops without leaving (a crash, or a pause) stays a member
// for the session timeout, then the group goes on without it.
func TestMembersAgreeAndADeadMemberTimesOut(t *testing.T) {
	g := newGroup(t)
	n1, n2, n3 := g.join("n1", true), g.join("n2", true), g.join("n3", false)
	defer n1.Close()
	defer n2.Close()
	var seen []Session
	for _, m := range []*Member{n1, n2, n3} {
		seen = append(seen, await(t, m, "all three in one generation", members("n1", "n2", "n3")))
	}
	for _, s := range seen[1:] {
		if s.Generation != seen[0].Generation || s.Decider != seen[0].Decider {
			t.Fatalf("members disagree: %+v", seen)
		}
	}
	if d := seen[0].Decider; d != "n1" && d != "n2" {
		t.Fatalf("decider %q: a manual member decided, or none", d)
	}
	stopped := time.Now()
	n3.Close()
	s := await(t, n1, "n3 out of the group", members("n1", "n2"))
	t.Logf("a member that stopped without leaving was out after %v (session timeout %v), generation %d → %d", time.Since(stopped).Round(time.Millisecond), session, seen[0].Generation, s.Generation)
	if time.Since(stopped) < session/2 {
		t.Fatalf("n3 was out after %v, before its session could have timed out", time.Since(stopped))
	}
}

// A static member that restarts within the session timeout takes its own
// place back: no rebalance, the same generation for every member.
func TestQuickRestartKeepsTheGeneration(t *testing.T) {
	g := newGroup(t)
	n1, n2 := g.join("n1", true), g.join("n2", true)
	defer n1.Close()
	before := await(t, n1, "both in", members("n1", "n2"))
	await(t, n2, "both in", members("n1", "n2"))
	n2.Close()
	n2 = g.join("n2", true)
	defer n2.Close()
	again := await(t, n2, "n2 back", members("n1", "n2"))
	if again.Generation != before.Generation {
		t.Fatalf("n2's restart made generation %d, was %d: a rebalance", again.Generation, before.Generation)
	}
	time.Sleep(session) // n2's old session would have timed out by now
	if s, _ := n1.Session(); s.Generation != before.Generation || !slices.Equal(s.Members, before.Members) {
		t.Fatalf("after n2's restart n1 sees %+v, was %+v", s, before)
	}
}

// A decider paused past its session timeout never writes: its registry
// write carries the generation it decided in, and Kafka refuses it.
func TestStaleDeciderWriteIsRefused(t *testing.T) {
	g := newGroup(t)
	reg, err := registry.Open(context.Background(), registry.Config{Client: g.opts, Topic: g.topics.Registry(), Key: []byte("0123456789abcdef0123")})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()
	put := func(m *Member, s Session, node string) error {
		return reg.UpdateFenced(ctx, m.Fence(s), func(*registry.View) ([]registry.Mutation, error) {
			return []registry.Mutation{registry.PutNode(registry.Node{ID: node})}, nil
		})
	}
	n1 := g.join("n1", true)
	old := await(t, n1, "n1 decides", func(s Session) bool { return s.Decider == "n1" })
	if err := put(n1, old, "by-n1-live"); err != nil {
		t.Fatalf("the live decider's write: %v", err)
	}
	// n2 joins: a new generation, n1 still its decider. A write n1 decided
	// in the generation before is refused.
	n2 := g.join("n2", true)
	defer n2.Close()
	cur := await(t, n1, "both in", members("n1", "n2"))
	if err := put(n1, old, "by-n1-gen-before"); !errors.Is(err, registry.ErrStaleMember) {
		t.Fatalf("n1's write of generation %d in generation %d: %v, want ErrStaleMember", old.Generation, cur.Generation, err)
	}
	old = await(t, n1, "n1 decides", func(s Session) bool { return s.Decider == "n1" })
	// n1 pauses: it sends nothing (its client closed without leaving) but
	// keeps its session, as a SIGSTOPped process does. Once n1's session
	// times out n2 alone is the group and decides.
	n1.Close()
	now := await(t, n2, "n2 decides alone", func(s Session) bool { return s.Decider == "n2" && slices.Equal(s.Members, []string{"n2"}) })
	// n1 resumes and writes what it decided in its old generation.
	err = put(n1, old, "by-n1-stale")
	if !errors.Is(err, registry.ErrStaleMember) {
		t.Fatalf("the stale decider's write: %v, want ErrStaleMember", err)
	}
	if err := put(n2, now, "by-n2"); err != nil {
		t.Fatalf("the new decider's write: %v", err)
	}
	if err := reg.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	v := reg.View()
	for _, n := range []string{"by-n1-stale", "by-n1-gen-before"} {
		if _, ok := v.Nodes[n]; ok {
			t.Fatalf("the stale write %s landed", n)
		}
	}
	for _, n := range []string{"by-n1-live", "by-n2"} {
		if _, ok := v.Nodes[n]; !ok {
			t.Fatalf("%s's write is missing: %v", n, v.Nodes)
		}
	}
	t.Logf("stale write refused: %v", err)
}
