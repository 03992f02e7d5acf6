package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/topics"
)

// The crash loop: one `sluice serve` on one data directory, written to by
// several gRPC clients (unique keys, and keys overwritten in sequence) and by
// kcat through the ingest topic, called by client processes (the CLI and a
// Go client, new processes all the time, every RPC), killed with SIGKILL at
// random moments — under load, and while it restores — and started again,
// at least 20 times. The node never dies by itself (issue 22.1: a call in
// a restart's first moments once killed it). After every restart every
// partition must serve within a generous deadline, and every acknowledged
// write must be there with its value (for unique gRPC writes, version 1:
// written once; for an overwritten key, the last acknowledged value or a
// later one whose answer was lost, never an older one). SLUICE_SEED replays
// a run's schedule.

// The embedded default: no --brokers, kfake persisted under the data directory.
func TestCrashLoopEmbedded(t *testing.T) {
	dir := t.TempDir()
	kafka := freeAddr(t)
	p := newProcArgs(t, dir, "--embedded-kafka-addr", kafka, "--http-addr", freeAddr(t))
	keepOnFailure(t, dir)
	// The embedded broker takes only its credentials: kcat writes as a
	// collector, from what `sluice kafka-credentials` prints.
	props := collectorProperties(t, dir, kafka)
	runCrashLoop(t, p, []string{kafka}, topics.Names{Cluster: "sluice"}.Ingest(), "-F", props)
}

// --wal disk (issue 23.11): the partition's Badger is its log. Such a node
// consumes no ingest: gRPC writers only.
func TestCrashLoopDisk(t *testing.T) {
	p := modeNode(t, t.TempDir(), t.TempDir(), "--wal", "disk", "--http-addr", freeAddr(t))
	runCrashLoop(t, p, nil, "")
}

// --store cached (issue 23.11): a value read after a restart is the
// acknowledged one, never an older one the cache kept.
func TestCrashLoopCached(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	p := newProc(t, cluster, t.TempDir(), "--store", "cached", "--cache-dir", t.TempDir(), "--http-addr", freeAddr(t))
	runCrashLoop(t, p, kafkatest.Brokers(t), topics.Names{Cluster: cluster}.Ingest())
}

// The same against real Kafka: unlike TestKill9UnderLoadLosesNothingAcknowledged
// it kills during restore, runs 20 cycles, checks versions and ingest too.
func TestCrashLoopKafka(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	p := newProc(t, cluster, t.TempDir(), "--http-addr", freeAddr(t))
	runCrashLoop(t, p, kafkatest.Brokers(t), topics.Names{Cluster: cluster}.Ingest())
}

const crashCycles = 20

// crashLoopLimit bounds a whole crash loop: it takes about a minute on a
// loaded 2-core machine; a loop that needs this long is stuck somewhere.
const crashLoopLimit = 5 * time.Minute

// keepOnFailure copies dir to $SLUICE_KEEP_DIR when the test fails, for a
// look at the broker's log and the stores after the test.
func keepOnFailure(t *testing.T, dir string) {
	keep := os.Getenv("SLUICE_KEEP_DIR")
	if keep == "" {
		return
	}
	t.Cleanup(func() {
		if t.Failed() {
			if err := os.CopyFS(keep, os.DirFS(dir)); err != nil {
				t.Logf("keeping %s: %v", dir, err)
			} else {
				t.Logf("data directory kept in %s", keep)
			}
		}
	})
}

// acked is a write that was acknowledged: key → value.
type acked struct {
	key, value string
	grpc       bool // written with gRPC Upsert (else kcat): version 1 expected
}

// overwritten is one key written again and again by one writer, value n
// for its n-th write: acked is the last acknowledged n, tried the last sent.
type overwritten struct{ acked, tried int }

// overwriteKeys is how many keys the overwriting writer cycles through.
const overwriteKeys = 8

type crashRun struct {
	t       *testing.T
	p       *proc
	rng     *rand.Rand
	brokers []string
	ingest  string
	kcat    bool
	kcatArg []string // kcat's extra flags (credentials)

	mu    sync.Mutex
	acked []acked
	tried []string // every key of a gRPC batch sent, acknowledged or not
	over  [overwriteKeys]overwritten
}

// runCrashLoop runs the loop on p; kcat writes to the ingest topic on
// brokers (with kcatArg) unless ingest is "".
func runCrashLoop(t *testing.T, p *proc, brokers []string, ingest string, kcatArg ...string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SLUICE_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (SLUICE_SEED=%d replays the schedule)", seed, seed)
	_, err := exec.LookPath("kcat")
	r := &crashRun{t: t, p: p, rng: rand.New(rand.NewPCG(seed, 12)), brokers: brokers, ingest: ingest, kcat: err == nil && ingest != "", kcatArg: kcatArg}
	if !r.kcat && ingest != "" {
		t.Log("kcat not installed: gRPC writers only")
	}
	clients := startClients(t, p)
	began := time.Now()
	var (
		toServe          []time.Duration
		duringRestore    int
		checked, lastLen int
	)
	for cycle := 0; cycle < crashCycles; cycle++ {
		if time.Since(began) > crashLoopLimit {
			t.Fatalf("the crash loop ran out of time after %d cycles", cycle)
		}
		p.startNoWait()
		waitStorm := func() {}
		if cycle%3 == 1 { // client processes queued up for its first moment of serving
			if waitStorm, err = clients.stormAtStart(); err != nil {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
		} else if r.rng.IntN(3) == 0 { // kill it while it starts and restores
			time.Sleep(time.Duration(100+r.rng.IntN(1100)) * time.Millisecond)
			if p.waitServingWithin(time.Millisecond) != nil {
				if err := p.killAlive(); err != nil {
					t.Fatalf("cycle %d, while it restored: %v", cycle, err)
				}
				duringRestore++
				continue
			}
		}
		if err := p.waitServingWithin(90 * time.Second); err != nil {
			t.Fatalf("cycle %d: stuck restart: %v\n/healthz: %s", cycle, err, r.healthz())
		}
		waitStorm()
		t.Logf("cycle %d: serving %v after start", cycle, time.Since(p.started).Round(time.Millisecond))
		if cycle%3 != 1 { // a storm's start waited for it, frozen
			toServe = append(toServe, time.Since(p.started))
		}
		// What was acknowledged before the last kill is all there.
		r.mu.Lock()
		since := slices.Clone(r.acked[checked:])
		lastLen = len(r.acked)
		r.mu.Unlock()
		r.verify(cycle, since)
		r.verifyOverwritten(cycle)
		checked = lastLen
		r.loadAndKill(cycle, time.Duration(500+r.rng.IntN(1500))*time.Millisecond)
		if t.Failed() {
			t.FailNow()
		}
	}
	p.startNoWait()
	if err := p.waitServingWithin(90 * time.Second); err != nil {
		t.Fatalf("final start: stuck restart: %v\n/healthz: %s", err, r.healthz())
	}
	toServe = append(toServe, time.Since(p.started))
	r.verify(crashCycles, r.acked)
	r.verifyOverwritten(crashCycles)
	clients.close()
	r.noPanicLogged()
	grpcWrites := 0
	for _, a := range r.acked {
		if a.grpc {
			grpcWrites++
		}
	}
	if r.kcat && grpcWrites == len(r.acked) {
		// Every kcat run failed: with the embedded broker's credentials
		// wrong or unusable the loop would silently test gRPC only.
		t.Fatal("kcat is installed but none of its writes was acknowledged")
	}
	slices.Sort(toServe)
	overwrites := 0
	for _, o := range r.over {
		overwrites += o.acked
	}
	t.Logf("%d cycles (%d killed while restoring) in %v: %d acknowledged writes (%d gRPC, %d kcat) and %d overwrites, 0 lost, 0 stale, 0 stuck restarts, 0 deaths; restart to serving: median %v, max %v",
		crashCycles, duringRestore, time.Since(began).Round(time.Second), len(r.acked), grpcWrites, len(r.acked)-grpcWrites, overwrites,
		toServe[len(toServe)/2].Round(time.Millisecond), toServe[len(toServe)-1].Round(time.Millisecond))
}

// loadAndKill writes from several gRPC clients and kcat for about d, then
// kills the node under that load.
func (r *crashRun) loadAndKill(cycle int, d time.Duration) {
	r.loadThen(cycle, d, func() {
		if err := r.p.killAlive(); err != nil {
			r.t.Errorf("cycle %d, under load: %v", cycle, err)
		}
	})
}

// loadThen writes from several gRPC clients and kcat for about d, then ends
// the node with end under that load.
func (r *crashRun) loadThen(cycle int, d time.Duration, end func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.write(cycle, w, stop) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.overwrite(stop) }()
	if r.kcat {
		wg.Add(1)
		go func() { defer wg.Done(); r.produce(cycle, stop) }()
	}
	time.Sleep(d)
	end()
	close(stop)
	wg.Wait()
}

// write upserts batches of unique keys until stop or the first error.
func (r *crashRun) write(cycle, writer int, stop <-chan struct{}) {
	conn, err := grpc.NewClient(r.p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		req := &sluicev1.UpsertRequest{}
		var batch []acked
		for k := 0; k < 5; k++ {
			a := acked{key: fmt.Sprintf("c%d-w%d-b%d-k%d", cycle, writer, n, k), value: fmt.Sprintf("v-c%d-w%d-b%d", cycle, writer, n), grpc: true}
			req.Entries = append(req.Entries, &sluicev1.Entry{Key: []byte(a.key), Value: []byte(a.value)})
			batch = append(batch, a)
		}
		r.mu.Lock()
		for _, a := range batch {
			r.tried = append(r.tried, a.key)
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := dc.Upsert(ctx, req)
		cancel()
		if err != nil {
			return // the node is gone, or refuses for now: this writer is done
		}
		// The keys span partitions: each partition's part is acknowledged
		// or fails on its own, and an answer without an error may still
		// name failed parts (a partition re-syncing, stopping). Only the
		// entries of no failed part were acknowledged.
		failed := failedEntries(resp)
		r.mu.Lock()
		for i, a := range batch {
			if !failed[i] {
				r.acked = append(r.acked, a)
			}
		}
		r.mu.Unlock()
		if len(failed) > 0 {
			return // a partition refuses for now: this writer is done
		}
	}
}

// failedEntries are the entries of an Upsert's failed parts: a call over
// several partitions that partly applied answers without an error and
// names the parts that did not (sluicev1.PartFailure).
func failedEntries(resp *sluicev1.UpsertResponse) map[int]bool {
	failed := map[int]bool{}
	for _, f := range resp.GetFailures() {
		for _, i := range f.Entries {
			failed[int(i)] = true
		}
	}
	return failed
}

// produce has kcat write lines to the ingest topic until stop; a kcat run
// that exits 0 had every line acknowledged by the broker.
func (r *crashRun) produce(cycle int, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		var lines strings.Builder
		var batch []acked
		for i := 0; i < 20; i++ {
			a := acked{key: fmt.Sprintf("kc-c%d-r%d-%d", cycle, n, i), value: fmt.Sprintf("kv-c%d-r%d", cycle, n)}
			fmt.Fprintf(&lines, "%s\t%s\n", a.key, a.value)
			batch = append(batch, a)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, "kcat", append(append([]string{}, r.kcatArg...), "-b", strings.Join(r.brokers, ","), "-t", r.ingest, "-P", "-K", "\t",
			"-X", "enable.idempotence=true", "-X", "message.timeout.ms=5000")...)
		cmd.Stdin = strings.NewReader(lines.String())
		err := cmd.Run()
		cancel()
		if err != nil {
			return // the broker is gone
		}
		r.mu.Lock()
		r.acked = append(r.acked, batch...)
		r.mu.Unlock()
	}
}

// verify reads every write back (ingested ones may take a moment to be
// applied) and fails the test on any that is missing or wrong.
func (r *crashRun) verify(cycle int, writes []acked) {
	t := r.t
	conn, err := grpc.NewClient(r.p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	var (
		mu    sync.Mutex
		wrong []string
		wg    sync.WaitGroup
	)
	work := make(chan acked)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				if why := readBack(dc, a); why != "" {
					mu.Lock()
					wrong = append(wrong, why)
					mu.Unlock()
				}
			}
		}()
	}
	for _, a := range writes {
		work <- a
	}
	close(work)
	wg.Wait()
	if len(wrong) > 0 {
		slices.Sort(wrong)
		t.Fatalf("after restart %d: %d of %d acknowledged writes lost or wrong, e.g. %v\n/healthz: %s", cycle, len(wrong), len(writes), wrong[:min(len(wrong), 10)], r.healthz())
	}
}

// readBack says what is wrong with a's key, or "" once it reads right
// (retrying while the node is busy or an ingested write is not applied yet).
func readBack(dc sluicev1.DataClient, a acked) string {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := dc.Get(ctx, &sluicev1.GetRequest{Key: []byte(a.key)})
		cancel()
		var why string
		switch {
		case err != nil:
			why = fmt.Sprintf("%s: %v", a.key, err)
		case !got.Found:
			why = a.key + ": missing"
		case string(got.Value) != a.value:
			return fmt.Sprintf("%s = %q, want %q", a.key, got.Value, a.value)
		case a.grpc && got.Version != 1:
			return fmt.Sprintf("%s has version %d, want 1", a.key, got.Version)
		default:
			return ""
		}
		if (a.grpc && err == nil) || time.Now().After(deadline) {
			return why // a gRPC write was acknowledged durable: no waiting for it
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *crashRun) healthz() string {
	i := slices.Index(r.p.args, "--http-addr")
	if i < 0 || r.p.args[i+1] == "-" {
		return "(no http port)"
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + r.p.args[i+1] + "/healthz")
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
