package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kvmodel"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/topics"
)

// nemesis injects one fault at a time into a cluster of the linearizability
// campaign: kill -9 and restart a node, lose one past its session timeout
// (automatic failover) and start it again (rebalancing), pause and resume
// one, move a
// partition (and pause its new owner while it fences), remove partitions and
// add others over overlapping slots (while the old owner is paused, too), or
// restart the Kafka broker. It reads the registry itself, so it knows the
// partitions as they are after its own removes and adds.
type nemesis struct {
	c      *cluster
	broker *restartable
	reg    *registry.Registry
	ctl    map[string]sluicev1.ControlClient
	rng    *rand.Rand
	faults map[string]int
	// keys and h are the clients' keys and history: the nemesis probes a
	// paused old owner with operations of its own (probe).
	keys  []string
	h     *kvmodel.History
	probe int // the next probe's client id
}

var nodeIDs = []string{"n1", "n2", "n3"}

func newNemesis(c *cluster, broker *restartable, seed uint64, keys []string, h *kvmodel.History) (*nemesis, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := registry.Open(ctx, registry.Config{Client: []kgo.Opt{kgo.SeedBrokers(c.brokers)}, Topic: topics.Names{Cluster: c.name}.Registry(), Key: registry.DeriveKey(clusterToken)})
	if err != nil {
		return nil, err
	}
	n := &nemesis{c: c, broker: broker, reg: reg, ctl: map[string]sluicev1.ControlClient{}, rng: rand.New(rand.NewPCG(seed, 99)), faults: map[string]int{},
		keys: keys, h: h, probe: 1000}
	for _, id := range nodeIDs {
		n.ctl[id] = c.control(id)
	}
	return n, nil
}

func (n *nemesis) close() { n.reg.Close() }

// run injects faults until stop and returns what it did.
func (n *nemesis) run(stop <-chan struct{}) map[string]int {
	for {
		select {
		case <-stop:
			return n.faults
		case <-time.After(time.Duration(500+n.rng.IntN(1000)) * time.Millisecond):
		}
		p := n.c.nodes[nodeIDs[n.rng.IntN(3)]]
		switch n.rng.IntN(11) {
		case 10:
			// Lost past its session timeout (the campaign's nodes run
			// --session-timeout 6s): its partitions fail over; then it
			// joins again and partitions are rebalanced onto it.
			p.kill()
			select {
			case <-stop:
			case <-time.After(time.Duration(7000+n.rng.IntN(5000)) * time.Millisecond):
			}
			p.startNoWait()
			n.faults["node lost (failover), then back (rebalance)"]++
		case 0, 1:
			p.kill()
			p.startNoWait()
			n.faults["kill -9"]++
		case 2, 3:
			n.pause(p, time.Duration(200+n.rng.IntN(800))*time.Millisecond)
			n.faults["pause"]++
		case 4:
			n.count("move", n.move(false))
		case 5:
			n.count("move, new owner paused while it fences", n.move(true))
		case 6, 7:
			n.count("remove and add over overlapping slots", n.replace(false))
		case 8:
			n.count("remove and add over the slots of a paused owner", n.replace(true))
		default:
			if err := n.broker.restart(time.Duration(200+n.rng.IntN(800)) * time.Millisecond); err != nil {
				n.faults["kafka restart failed"]++
				continue
			}
			n.faults["kafka restart"]++
		}
	}
}

func (n *nemesis) count(fault string, err error) {
	if err != nil {
		n.faults[fault+" (failed)"]++
		return
	}
	n.faults[fault]++
}

func (n *nemesis) pause(p *proc, d time.Duration) {
	p.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(d)
	p.cmd.Process.Signal(syscall.SIGCONT)
}

// partitions is the registry's partitions, fresh, by slot order.
func (n *nemesis) partitions() ([]registry.Partition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.reg.CatchUp(ctx); err != nil {
		return nil, err
	}
	var ps []registry.Partition
	for _, p := range n.reg.View().Partitions {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b registry.Partition) int { return int(a.Range.From - b.Range.From) })
	return ps, nil
}

// control makes a control call through one of the nodes not in skip that
// answers, trying each in random order. An answer from the control plane
// itself (anything but Unavailable or a deadline) is final.
func (n *nemesis) control(skip string, call func(context.Context, sluicev1.ControlClient) error) error {
	var err error
	for _, i := range n.rng.Perm(3) {
		id := nodeIDs[i]
		if id == skip {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = call(ctx, n.ctl[id])
		cancel()
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			return err
		}
	}
	return err
}

// move moves a partition to another node; with pauseNew, the new owner is
// paused a moment later, in the middle of its fencing and replay.
func (n *nemesis) move(pauseNew bool) error {
	ps, err := n.partitions()
	if err != nil || len(ps) == 0 {
		return fmt.Errorf("no partitions: %w", err)
	}
	p := ps[n.rng.IntN(len(ps))]
	to := nodeIDs[n.rng.IntN(3)]
	for to == p.Owner {
		to = nodeIDs[n.rng.IntN(3)]
	}
	if err := n.control("", func(ctx context.Context, cc sluicev1.ControlClient) error {
		_, err := cc.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: p.ID, Node: to})
		return err
	}); err != nil {
		return err
	}
	if pauseNew {
		time.Sleep(time.Duration(n.rng.IntN(300)) * time.Millisecond)
		n.pause(n.c.nodes[to], time.Duration(200+n.rng.IntN(800))*time.Millisecond)
	}
	return nil
}

// replace removes one partition or two adjacent ones and adds one or two
// over the same slots with boundaries of its own, on random nodes: the same
// range again, a split, a merge or a shifted boundary, every new partition
// overlapping a removed one. Keys of the slots answer Unavailable in
// between. With zombie, the removed partition's owner is paused first and
// resumed only once the new owners have had time to serve: it wakes up
// holding a partition the registry no longer has.
func (n *nemesis) replace(zombie bool) error {
	if err := n.coverGaps(); err != nil {
		return err
	}
	ps, err := n.partitions()
	if err != nil || len(ps) == 0 {
		return fmt.Errorf("no partitions: %w", err)
	}
	i := n.rng.IntN(len(ps))
	removed := []registry.Partition{ps[i]}
	if !zombie && i+1 < len(ps) && ps[i+1].Range.From == ps[i].Range.To && n.rng.IntN(2) == 0 {
		removed = append(removed, ps[i+1])
	}
	span := keyspace.Range{From: removed[0].Range.From, To: removed[len(removed)-1].Range.To}
	adds := []keyspace.Range{span}
	if span.Len() >= 2 && len(ps)-len(removed)+2 <= 8 && n.rng.IntN(2) == 0 {
		m := span.From + 1 + n.rng.Int32N(span.Len()-1)
		adds = []keyspace.Range{{From: span.From, To: m}, {From: m, To: span.To}}
	}
	skip := ""
	if zombie {
		skip = removed[0].Owner
		old := n.c.nodes[skip]
		old.cmd.Process.Signal(syscall.SIGSTOP)
		defer old.cmd.Process.Signal(syscall.SIGCONT) // if probe did not
		defer func() { n.probeZombie(old, span) }()
	}
	for _, p := range removed {
		if err := n.control(skip, func(ctx context.Context, cc sluicev1.ControlClient) error {
			_, err := cc.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: &p.ID})
			return err
		}); err != nil {
			return fmt.Errorf("removing partition %d: %w", p.ID, err)
		}
	}
	time.Sleep(time.Duration(n.rng.IntN(500)) * time.Millisecond)
	var errs []error
	for _, r := range adds {
		to := nodeIDs[n.rng.IntN(3)]
		for to == skip {
			to = nodeIDs[n.rng.IntN(3)]
		}
		errs = append(errs, n.add(skip, r, to))
	}
	if zombie {
		time.Sleep(time.Duration(1000+n.rng.IntN(1500)) * time.Millisecond)
	}
	return errors.Join(errs...)
}

// probeZombie writes a key of span through its new owner, then, once that
// is acknowledged, sends reads and a write of the key straight to old, the
// paused owner of the removed partition, resumes it and records everything
// in the history. The paused node answers them before it learns of its
// partition's removal: a read it answers from its own state, or a write it
// commits, is not linearizable, since the new owner's write came before.
func (n *nemesis) probeZombie(old *proc, span keyspace.Range) {
	key := string(keyIn(span.From, span.To, 16)) // a key of its own if no client's key is in span
	for _, k := range n.keys {
		if span.Contains(keyspace.Slot([]byte(k), 16)) {
			key = k
		}
	}
	var others []string
	for _, id := range nodeIDs {
		if p := n.c.nodes[id]; p != old {
			others = append(others, p.addr)
		}
	}
	ctx := context.Background()
	if cl, err := client.New(others...); err == nil { // a client routed afresh, away from old
		n.probe++
		in := kvmodel.Input{Op: "put", Key: key, Value: fmt.Sprintf("probe-%d", n.probe)}
		callCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
		start := time.Now()
		res, err := cl.Upsert(callCtx, client.Entry{Key: []byte(key), Value: []byte(in.Value)})
		cancel()
		cl.Close()
		switch {
		case err == nil:
			n.h.Add(n.probe, in, start, kvmodel.Output{Version: res[0].Version}, time.Now())
		case !certainlyNotApplied(err):
			n.h.Add(n.probe, in, start, kvmodel.Output{Unknown: true}, time.Now())
		}
	}
	dc := dataClient(n.c.t, old.addr)
	var wg sync.WaitGroup
	for i := range 4 {
		n.probe++
		id := n.probe
		wg.Add(1)
		go func() {
			defer wg.Done()
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			start := time.Now()
			if i == 0 {
				in := kvmodel.Input{Op: "put", Key: key, Value: fmt.Sprintf("zombie-%d", id)}
				resp, err := dc.Upsert(callCtx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte(key), Value: []byte(in.Value)}}})
				switch {
				case err == nil:
					n.h.Add(id, in, start, kvmodel.Output{Version: resp.Results[0].Version}, time.Now())
				case !certainlyNotApplied(err):
					n.h.Add(id, in, start, kvmodel.Output{Unknown: true}, time.Now())
				}
				return
			}
			resp, err := dc.Get(callCtx, &sluicev1.GetRequest{Key: []byte(key)})
			if err == nil {
				n.h.Add(id, kvmodel.Input{Op: "get", Key: key}, start, kvmodel.Output{OK: resp.Found, Value: string(resp.Value), Version: resp.Version}, time.Now())
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // the calls wait in the paused node's socket
	old.cmd.Process.Signal(syscall.SIGCONT)
	wg.Wait()
	n.faults["zombie probes"]++
}

func (n *nemesis) add(skip string, r keyspace.Range, node string) error {
	return n.control(skip, func(ctx context.Context, cc sluicev1.ControlClient) error {
		_, err := cc.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: r.From, To: r.To}, Node: node})
		return err
	})
}

// coverGaps adds a partition, on a random node, over every run of slots no
// partition owns (left by a replace whose add failed).
func (n *nemesis) coverGaps() error {
	ps, err := n.partitions()
	if err != nil {
		return err
	}
	const slots = 16
	owned := make([]bool, slots)
	for _, p := range ps {
		for s := p.Range.From; s < p.Range.To; s++ {
			owned[s] = true
		}
	}
	var errs []error
	for s := int32(0); s < slots; {
		if owned[s] {
			s++
			continue
		}
		from := s
		for s < slots && !owned[s] {
			s++
		}
		errs = append(errs, n.add("", keyspace.Range{From: from, To: s}, nodeIDs[n.rng.IntN(3)]))
	}
	return errors.Join(errs...)
}
