package integration

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkalocal"
	"github.com/sluicedb/sluice/internal/kvmodel"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/topics"
)

// do runs one random operation of a client and records it. Reads that fail
// are left out (they change nothing), and so are writes the server answered
// as certainly not applied (NotApplied or BadNode: keys of removed slots
// answer Unavailable with NotApplied until a partition is added over them);
// other failed writes count as maybe applied. A compare-and-set refused
// (Aborted) is a known outcome: not applied.
func do(ctx context.Context, c *client.Client, id, n int, rng *rand.Rand, keys []string, h *kvmodel.History, versions map[string]uint64) {
	in := kvmodel.Input{Key: keys[rng.IntN(len(keys))], Value: fmt.Sprintf("c%d-%d", id, n)}
	callCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	start := time.Now()
	var out kvmodel.Output
	var err error
	switch r := rng.IntN(100); {
	case r < 40:
		in.Op = "get"
		var v client.Value
		v, out.OK, err = c.Get(callCtx, []byte(in.Key))
		out.Value, out.Version = string(v.Data), v.Version
		if err == nil {
			versions[in.Key] = v.Version
		}
	case r < 70:
		in.Op = "put"
		var res []*client.WriteResult
		if res, err = c.Upsert(callCtx, client.Entry{Key: []byte(in.Key), Value: []byte(in.Value)}); err == nil {
			out.Version = res[0].Version
		}
	case r < 90:
		in.Op, in.Expect = "cas", versions[in.Key]
		expect := in.Expect
		var res []*client.WriteResult
		res, err = c.Upsert(callCtx, client.Entry{Key: []byte(in.Key), Value: []byte(in.Value), ExpectedVersion: &expect})
		if err == nil {
			out.OK, out.Version = true, res[0].Version
		} else if status.Code(err) == codes.Aborted {
			err = nil
		}
	default:
		in.Op = "rm"
		out.OK, err = c.Remove(callCtx, []byte(in.Key))
	}
	if err != nil {
		if in.Op == "get" || certainlyNotApplied(err) {
			return
		}
		out = kvmodel.Output{Unknown: true}
	}
	h.Add(id, in, start, out, time.Now())
}

// certainlyNotApplied: the server said so (NotApplied), or the key was sent
// to a node that does not own it (BadNode). The client retries only such
// answers, so a final one means no attempt was applied.
func certainlyNotApplied(err error) bool {
	for _, d := range status.Convert(err).Details() {
		switch d.(type) {
		case *sluicev1.NotApplied, *sluicev1.BadNode:
			return true
		}
	}
	return false
}

// Concurrent clients doing gets, puts, compare-and-sets and removes against
// three nodes while a nemesis kills, pauses, moves, removes and adds
// partitions over overlapping slots and restarts Kafka (nemesis_test.go),
// in half of the runs with slow fencing: the history must be linearizable.
// By default one 15 s run. SLUICE_SEED replays a run (its seed
// is printed); SLUICE_CHAOS (a duration, `make chaos`) runs a campaign of
// runs of SLUICE_CHAOS_RUN (default 60 s) each, seeds counting up, until that
// much time has passed, and reports runs, operations checked, faults and
// violations. A violating run fails its subtest; the campaign goes on.
func TestLinearizableUnderFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	total, runLength := time.Duration(0), 15*time.Second
	if d, err := time.ParseDuration(os.Getenv("SLUICE_CHAOS")); err == nil {
		total, runLength = d, time.Minute
		if r, err := time.ParseDuration(os.Getenv("SLUICE_CHAOS_RUN")); err == nil {
			runLength = r
		}
	}
	broker := startBroker(t)
	var (
		sum    campaign
		faults = map[string]int{}
		end    = time.Now().Add(total)
	)
	for i := uint64(0); i == 0 || time.Until(end) > runLength/2; i++ {
		s := seed + i
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			sum.runs++
			defer func() {
				if t.Failed() {
					sum.failed++
				}
			}()
			r := linearizabilityRun(t, broker, s, runLength)
			sum.ops += r.ops
			sum.acked += r.acked
			if r.violation {
				sum.violations++
			}
			if r.undecided {
				sum.undecided++
			}
			for f, n := range r.faults {
				faults[f] += n
			}
		})
	}
	t.Logf("campaign: %d runs of %v, %d operations checked (%d with a known outcome), faults %v, violations %d, failed runs %d, runs porcupine could not decide in time %d",
		sum.runs, runLength, sum.ops, sum.acked, faults, sum.violations, sum.failed, sum.undecided)
}

// explain writes, for a history that is not linearizable, porcupine's
// visualization and each failing key's operations in call order, with the
// longest prefix of them porcupine could linearize, to files that outlive the
// test.
func explain(t *testing.T, seed uint64, ops []porcupine.Operation) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("sluice-violation-%d-", seed))
	if err != nil {
		t.Log(err)
		return
	}
	_, info := porcupine.CheckOperationsVerbose(kvmodel.Model, ops, 60*time.Second)
	if err := porcupine.VisualizePath(kvmodel.Model, info, filepath.Join(dir, "history.html")); err != nil {
		t.Log(err)
	}
	for _, part := range kvmodel.Model.Partition(ops) {
		res, info := porcupine.CheckOperationsVerbose(kvmodel.Model, part, 60*time.Second)
		if res != porcupine.Illegal {
			continue
		}
		var b strings.Builder
		longest := []porcupine.Operation{}
		for _, p := range info.PartialLinearizationsOperations() {
			for _, l := range p {
				if len(l) > len(longest) {
					longest = l
				}
			}
		}
		fmt.Fprintf(&b, "longest linearizable prefix: %d of %d operations; its last ones:\n", len(longest), len(part))
		for _, op := range longest[max(0, len(longest)-15):] {
			fmt.Fprintf(&b, "  client %d call %d return %d %s\n", op.ClientId, op.Call, op.Return, kvmodel.Model.DescribeOperation(op.Input, op.Output))
		}
		sorted := slices.Clone(part)
		slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		fmt.Fprintf(&b, "all operations in call order:\n")
		for _, op := range sorted {
			fmt.Fprintf(&b, "  client %d call %d return %d %s\n", op.ClientId, op.Call, op.Return, kvmodel.Model.DescribeOperation(op.Input, op.Output))
		}
		key := part[0].Input.(kvmodel.Input).Key
		path := filepath.Join(dir, "key-"+key+".txt")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Log(err)
		}
		t.Logf("key %s is not linearizable: %s", key, path)
	}
	t.Logf("visualization: %s", filepath.Join(dir, "history.html"))
}

// historyClients starts n clients of the Go client on addrs, each doing
// gets, puts, compare-and-sets and removes on keys (do, its random choices
// seeded by seed and its id) into h until stop; wg counts them.
func historyClients(t *testing.T, addrs []string, n int, seed uint64, keys []string, h *kvmodel.History, stop <-chan struct{}, wg *sync.WaitGroup) {
	for id := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			cl, err := client.New(addrs...)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			versions := map[string]uint64{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				do(context.Background(), cl, id, i, rng, keys, h, versions)
			}
		}()
	}
}

// finalReads reads every key once more through a new client of addrs, into
// the history (as client 100).
func finalReads(t *testing.T, addrs []string, keys []string, h *kvmodel.History) {
	t.Helper()
	final, err := client.New(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer final.Close()
	for _, k := range keys {
		start := time.Now()
		v, found, err := final.Get(context.Background(), []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		h.Add(100, kvmodel.Input{Op: "get", Key: k}, start, kvmodel.Output{OK: found, Value: string(v.Data), Version: v.Version}, time.Now())
	}
}

// campaign sums the runs of TestLinearizableUnderFaults.
type campaign struct{ runs, ops, acked, violations, failed, undecided int }

// runResult is what one run checked.
type runResult struct {
	ops, acked int
	faults     map[string]int
	violation  bool // not linearizable, or the nodes' state is not the changelog's
	undecided  bool // porcupine ran out of time: the history was not checked
}

// minOps is the operations a run goes on to after its faults: one with
// fewer than minOps-20 of known outcome tested too little.
const minOps = 70

// linearizabilityRun runs one seeded run on a fresh cluster over broker.
func linearizabilityRun(t *testing.T, broker *restartable, seed uint64, length time.Duration) runResult {
	// Slow fencing: every InitProducerID of the nodes is sent up to 1.5 s
	// late and its return seen up to 1.5 s late (five leases), as a broker
	// slow to fence would: an old owner keeps committing meanwhile.
	slowFencing := rand.New(rand.NewPCG(seed, 7)).IntN(2) == 0
	t.Logf("seed %d (SLUICE_SEED=%d replays it), run of %v, slow fencing %v", seed, seed, length, slowFencing)
	if slowFencing {
		t.Setenv(node.SlowFencingEnv, "1500ms") // the nodes, and their restarts, inherit it
	}
	c := startClusterOn(t, broker.b.Addr, "--lease", "300ms", "--session-timeout", "6s", "--rebalance")
	keys := []string{"a", "b", "c", "d", "e", "f"}
	ctx := context.Background()
	h := &kvmodel.History{}
	nem, err := newNemesis(c, broker, seed, keys, h)
	if err != nil {
		t.Fatal(err)
	}
	defer nem.close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	historyClients(t, c.addrs(), 6, seed, keys, h, stop, &wg)
	faultsCh, stopFaults := make(chan map[string]int, 1), make(chan struct{})
	go func() { faultsCh <- nem.run(stopFaults) }()
	time.Sleep(length)
	close(stopFaults)
	faults := <-faultsCh
	// The faults over, the clients go on until the run has checked enough
	// (a Kafka restart slow to come back on a loaded machine left a 15 s
	// run with 25 operations), two minutes at most.
	for deadline := time.Now().Add(2 * time.Minute); len(h.Operations()) < minOps && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if slowFencing {
		faults["slow fencing (runs)"]++
	}
	// Heal: every node running and serving, every slot in a partition, then
	// read every key once more.
	for _, p := range c.nodes {
		p.cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-p.exited:
			p.start()
		default:
			p.waitServing()
		}
	}
	eventually(t, 60*time.Second, nem.coverGaps)
	c.waitServing("n1")
	finalReads(t, c.addrs(), keys, h)
	// The nodes' state equals a replay of the changelog: fold every committed
	// change record, per key in log order, and compare with the final reads.
	replayed := map[string]kvmodel.State{}
	from := map[int32]int64{}
	for slot := int32(0); slot < 16; slot++ {
		from[slot] = 0
	}
	_, err = kafkaread.Replay(ctx, []kgo.Opt{kgo.SeedBrokers(c.brokers)}, topics.Names{Cluster: c.name}.Changelog(), from, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			rec, err := changelog.Decode(r)
			if err != nil {
				return err
			}
			if ch := rec.Change; rec.Kind == kv.KindChange {
				replayed[string(ch.Key)] = kvmodel.State{Value: string(ch.Value), Version: ch.Version, Present: !ch.Remove}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ops := h.Operations()
	diverged := false
	for _, op := range ops[len(ops)-len(keys):] { // the final reads
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		want := replayed[in.Key]
		if ok := want.Present; ok != out.OK || (ok && (want.Value != out.Value || want.Version != out.Version)) {
			t.Errorf("key %s: the nodes say %+v, a replay of the changelog says %+v", in.Key, out, want)
			diverged = true
		}
	}
	acked := 0
	for _, op := range ops {
		if !op.Output.(kvmodel.Output).Unknown {
			acked++
		}
	}
	res := porcupine.CheckOperationsTimeout(kvmodel.Model, ops, 60*time.Second)
	t.Logf("%d operations (%d with a known outcome), faults %v: %v", len(ops), acked, faults, res)
	if res == porcupine.Illegal {
		t.Errorf("the history is not linearizable (seed %d)", seed)
		explain(t, seed, ops)
	}
	if acked < minOps-20 {
		t.Errorf("only %d operations completed: the run tested too little", acked)
	}
	return runResult{ops: len(ops), acked: acked, faults: faults, violation: res == porcupine.Illegal || diverged, undecided: res == porcupine.Unknown}
}

// restartable is a broker of this test's own (the suite's shared broker serves
// packages running in parallel), so the nemesis can restart it.
type restartable struct {
	mu  sync.Mutex
	cfg kafkalocal.Config
	b   *kafkalocal.Broker
}

func startBroker(t *testing.T) *restartable {
	port := freePorts(t, 2) // the broker's and its controller's
	r := &restartable{cfg: kafkalocal.Config{Dir: t.TempDir(), Port: port, ControllerPort: port + 1}}
	var err error
	if r.b, err = kafkalocal.Start(context.Background(), r.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.mu.Lock(); r.b.Stop(); r.mu.Unlock() })
	return r
}

// restart stops the broker, waits down, and starts it again on the same log dirs.
func (r *restartable) restart(down time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b.Stop()
	time.Sleep(down)
	b, err := kafkalocal.Start(context.Background(), r.cfg)
	if err != nil {
		return err
	}
	r.b = b
	return nil
}
