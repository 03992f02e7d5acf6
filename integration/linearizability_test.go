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
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// kvInput and kvOutput are one operation of the history.
type kvInput struct {
	op     string // get, put, cas, rm
	key    string
	value  string
	expect uint64 // cas: the version expected
}

type kvOutput struct {
	unknown bool // a write whose outcome the client could not learn: it may or may not have happened
	ok      bool // cas: applied; rm: the key existed; get: found
	value   string
	version uint64
}

type kvState struct {
	value   string
	version uint64 // 0: never written
	present bool
}

// kvModel is one key of sluice (porcupine partitions the history by key):
// every write bumps the version, a removal too: a removed key is absent and
// the next write continues from its version (no ABA).
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() interface{} { return kvState{} },
	Step: func(st, in, out interface{}) (bool, interface{}) {
		s, i, o := st.(kvState), in.(kvInput), out.(kvOutput)
		switch i.op {
		case "get":
			return o.ok == s.present && (!o.ok || (o.value == s.value && o.version == s.version)), s
		case "put":
			next := kvState{i.value, s.version + 1, true}
			return o.unknown || o.version == next.version, next
		case "cas":
			if (i.expect == 0 && s.present) || (i.expect != 0 && (!s.present || s.version != i.expect)) {
				return o.unknown || !o.ok, s
			}
			next := kvState{i.value, s.version + 1, true}
			return o.unknown || (o.ok && o.version == next.version), next
		default: // rm
			if !s.present {
				return o.unknown || !o.ok, s
			}
			return o.unknown || o.ok, kvState{version: s.version + 1}
		}
	},
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(kvInput), out.(kvOutput)
		return fmt.Sprintf("%s(%s %q %d) -> %+v", i.op, i.key, i.value, i.expect, o)
	},
}

// history records operations from many goroutines.
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

func (h *history) add(client int, in kvInput, call time.Time, out kvOutput, ret time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := ret.UnixNano()
	if out.unknown {
		r = int64(^uint64(0) >> 1) // may take effect at any time after its call
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call.UnixNano(), Output: out, Return: r})
}

// do runs one random operation of a client and records it. Reads that fail
// are left out (they change nothing); writes that fail other than by a
// refused compare-and-set count as maybe applied.
func do(ctx context.Context, c *client.Client, id, n int, rng *rand.Rand, keys []string, h *history, versions map[string]uint64) {
	in := kvInput{key: keys[rng.IntN(len(keys))], value: fmt.Sprintf("c%d-%d", id, n)}
	callCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	start := time.Now()
	var out kvOutput
	var err error
	switch r := rng.IntN(100); {
	case r < 40:
		in.op = "get"
		var v client.Value
		v, out.ok, err = c.Get(callCtx, []byte(in.key))
		out.value, out.version = string(v.Data), v.Version
		if err == nil {
			versions[in.key] = v.Version
		}
	case r < 70:
		in.op = "put"
		var res []*sluicev1.WriteResult
		if res, err = c.Upsert(callCtx, client.Entry{Key: []byte(in.key), Value: []byte(in.value)}); err == nil {
			out.version = res[0].Version
		}
	case r < 90:
		in.op, in.expect = "cas", versions[in.key]
		expect := in.expect
		var res []*sluicev1.WriteResult
		res, err = c.Upsert(callCtx, client.Entry{Key: []byte(in.key), Value: []byte(in.value), ExpectedVersion: &expect})
		if err == nil {
			out.ok, out.version = true, res[0].Version
		} else if status.Code(err) == codes.Aborted {
			err = nil
		}
	default:
		in.op = "rm"
		out.ok, err = c.Remove(callCtx, []byte(in.key))
	}
	if err != nil {
		if in.op == "get" {
			return
		}
		out = kvOutput{unknown: true}
	}
	h.add(id, in, start, out, time.Now())
}

// nemesis injects one fault at a time until stop: kill -9 and restart a node,
// pause and resume one, move a partition, or restart the Kafka broker. It
// returns what it did.
func nemesis(c *cluster, broker *restartable, rng *rand.Rand, stop <-chan struct{}) map[string]int {
	faults := map[string]int{}
	ids := []string{"n1", "n2", "n3"}
	ctx := context.Background()
	for {
		select {
		case <-stop:
			return faults
		case <-time.After(time.Duration(500+rng.IntN(1000)) * time.Millisecond):
		}
		p := c.nodes[ids[rng.IntN(3)]]
		switch rng.IntN(7) {
		case 6:
			if err := broker.restart(time.Duration(200+rng.IntN(800)) * time.Millisecond); err != nil {
				faults["broker restart failed"]++
				continue
			}
			faults["kafka restart"]++
		case 0, 1:
			p.kill()
			p.startNoWait()
			faults["kill -9"]++
		case 2, 3:
			p.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			p.cmd.Process.Signal(syscall.SIGCONT)
			faults["pause"]++
		default:
			to := ids[rng.IntN(3)]
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := controlClient(c.t, c.nodes[to].control, clusterToken).MovePartition(mctx, &sluicev1.MovePartitionRequest{Id: uint32(1 + rng.IntN(4)), Node: to}); err == nil {
				faults["move"]++
			}
			cancel()
		}
	}
}

// Concurrent clients doing gets, puts, compare-and-sets and removes against
// three nodes while a nemesis kills, pauses and moves: the history must be
// linearizable. By default one 15 s run. SLUICE_SEED replays a run (its seed
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
			for f, n := range r.faults {
				faults[f] += n
			}
		})
	}
	t.Logf("campaign: %d runs of %v, %d operations checked (%d with a known outcome), faults %v, violations %d, failed runs %d",
		sum.runs, runLength, sum.ops, sum.acked, faults, sum.violations, sum.failed)
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
	_, info := porcupine.CheckOperationsVerbose(kvModel, ops, 60*time.Second)
	if err := porcupine.VisualizePath(kvModel, info, filepath.Join(dir, "history.html")); err != nil {
		t.Log(err)
	}
	for _, part := range kvModel.Partition(ops) {
		res, info := porcupine.CheckOperationsVerbose(kvModel, part, 60*time.Second)
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
			fmt.Fprintf(&b, "  client %d call %d return %d %s\n", op.ClientId, op.Call, op.Return, kvModel.DescribeOperation(op.Input, op.Output))
		}
		sorted := slices.Clone(part)
		slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		fmt.Fprintf(&b, "all operations in call order:\n")
		for _, op := range sorted {
			fmt.Fprintf(&b, "  client %d call %d return %d %s\n", op.ClientId, op.Call, op.Return, kvModel.DescribeOperation(op.Input, op.Output))
		}
		key := part[0].Input.(kvInput).key
		path := filepath.Join(dir, "key-"+key+".txt")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Log(err)
		}
		t.Logf("key %s is not linearizable: %s", key, path)
	}
	t.Logf("visualization: %s", filepath.Join(dir, "history.html"))
}

// campaign sums the runs of TestLinearizableUnderFaults.
type campaign struct{ runs, ops, acked, violations, failed int }

// runResult is what one run checked.
type runResult struct {
	ops, acked int
	faults     map[string]int
	violation  bool // not linearizable, or the nodes' state is not the changelog's
}

// linearizabilityRun runs one seeded run on a fresh cluster over broker.
func linearizabilityRun(t *testing.T, broker *restartable, seed uint64, length time.Duration) runResult {
	t.Logf("seed %d (SLUICE_SEED=%d replays it), run of %v", seed, seed, length)
	c := startClusterOn(t, broker.b.Addr, "--lease", "300ms")
	keys := []string{"a", "b", "c", "d", "e", "f"}
	ctx := context.Background()
	h := &history{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := 0; id < 6; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			cl, err := client.New(c.addrs()...)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			versions := map[string]uint64{}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				do(ctx, cl, id, n, rng, keys, h, versions)
			}
		}()
	}
	faultsCh := make(chan map[string]int, 1)
	go func() { faultsCh <- nemesis(c, broker, rand.New(rand.NewPCG(seed, 99)), stop) }()
	time.Sleep(length)
	close(stop)
	wg.Wait()
	faults := <-faultsCh
	// Heal: every node running and serving, then read every key once more.
	for _, p := range c.nodes {
		p.cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-p.exited:
			p.start()
		default:
			p.waitServing()
		}
	}
	c.waitServing("n1")
	final, err := client.New(c.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer final.Close()
	for _, k := range keys {
		start := time.Now()
		v, found, err := final.Get(ctx, []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		h.add(100, kvInput{op: "get", key: k}, start, kvOutput{ok: found, value: string(v.Data), version: v.Version}, time.Now())
	}
	// The nodes' state equals a replay of the changelog: fold every committed
	// change record, per key in log order, and compare with the final reads.
	replayed := map[string]kvState{}
	from := map[int32]int64{}
	for slot := int32(0); slot < 16; slot++ {
		from[slot] = 0
	}
	_, err = changelog.Replay(ctx, []kgo.Opt{kgo.SeedBrokers(c.brokers)}, changelog.Topics{Cluster: c.name}.Changelog(), from, func(b changelog.Batch) error {
		for _, r := range b.Records {
			rec, err := changelog.Decode(r)
			if err != nil {
				return err
			}
			if ch := rec.Change; rec.Kind == kv.KindChange {
				replayed[string(ch.Key)] = kvState{string(ch.Value), ch.Version, !ch.Remove}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	diverged := false
	for _, op := range h.ops[len(h.ops)-len(keys):] { // the final reads
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		want := replayed[in.key]
		if ok := want.present; ok != out.ok || (ok && (want.value != out.value || want.version != out.version)) {
			t.Errorf("key %s: the nodes say %+v, a replay of the changelog says %+v", in.key, out, want)
			diverged = true
		}
	}
	acked := 0
	for _, op := range h.ops {
		if !op.Output.(kvOutput).unknown {
			acked++
		}
	}
	res := porcupine.CheckOperationsTimeout(kvModel, h.ops, 60*time.Second)
	t.Logf("%d operations (%d with a known outcome), faults %v: %v", len(h.ops), acked, faults, res)
	if res == porcupine.Illegal {
		t.Errorf("the history is not linearizable (seed %d)", seed)
		explain(t, seed, h.ops)
	}
	if acked < 50 {
		t.Errorf("only %d operations completed: the run tested too little", acked)
	}
	return runResult{ops: len(h.ops), acked: acked, faults: faults, violation: res == porcupine.Illegal || diverged}
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
