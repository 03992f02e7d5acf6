package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func TestKeysStayInTheKeySpace(t *testing.T) {
	for _, dist := range []string{"uniform", "zipfian"} {
		key := keyFunc(Config{Keys: 50, Dist: dist, KeyPrefix: "bench-"}, rand.New(rand.NewPCG(1, 2)), new(atomic.Uint64))
		seen := map[string]int{}
		for i := 0; i < 5000; i++ {
			k := string(key())
			if k < "bench-00000000" || k > "bench-00000049" {
				t.Fatalf("%s: key %s outside the space", dist, k)
			}
			seen[k]++
		}
		if dist == "zipfian" && seen["bench-00000000"] < seen["bench-00000049"]*5 {
			t.Fatalf("zipfian is not skewed: %d vs %d", seen["bench-00000000"], seen["bench-00000049"])
		}
	}
	// Sequential: every key once before any twice, across the clients
	// that share the counter.
	var seq atomic.Uint64
	a, b := keyFunc(Config{Keys: 50, Dist: "sequential", KeyPrefix: "bench-"}, nil, &seq), keyFunc(Config{Keys: 50, Dist: "sequential", KeyPrefix: "bench-"}, nil, &seq)
	seen := map[string]bool{}
	for i := 0; i < 25; i++ {
		seen[string(a())], seen[string(b())] = true, true
	}
	if len(seen) != 50 || !seen["bench-00000000"] || !seen["bench-00000049"] || string(a()) != "bench-00000000" {
		t.Fatalf("sequential keys: %d distinct of 50", len(seen))
	}
	if err := (&Config{Workload: "nope"}).defaults(); err == nil {
		t.Fatal("an unknown workload was accepted")
	}
	if err := (&Config{Rate: -1}).defaults(); err == nil {
		t.Fatal("a negative rate was accepted")
	}
	if err := (&Config{Workload: "ingest"}).defaults(); err == nil {
		t.Fatal("ingest without brokers was accepted")
	}
}

// A short run against a real node: operations counted, no errors,
// percentiles in order, progress printed with a bar, JSON and SVG written.
func TestRunAgainstANode(t *testing.T) {
	n := startNode(t)
	for _, w := range []string{"upsert-batch", "mix-90-10", "get-eventual", "get-many", "get-many-eventual", "scan", "ping"} {
		var progress bytes.Buffer
		r, err := Run(context.Background(), Config{Addrs: []string{n.DataAddr()}, Workload: w, Keys: 1000, Concurrency: 4, Ops: 300, Batch: 10}, &progress)
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops != 300 || r.Errors != 0 || !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
			t.Fatalf("%s: %+v", w, r)
		}
		var out, svg bytes.Buffer
		r.Print(&out)
		if !strings.Contains(out.String(), "p99") {
			t.Fatalf("%s: printed %q", w, out.String())
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		if len(r.Timeline) > 0 {
			if err := r.WriteSVG(&svg); err != nil || !strings.Contains(svg.String(), "<svg") {
				t.Fatalf("svg: %v", err)
			}
			if !strings.Contains(progress.String(), "ops/s") || !strings.Contains(progress.String(), "/300") {
				t.Fatalf("progress: %q", progress.String())
			}
		}
	}
}

// A paced run takes at least as long as its rate says, whatever the
// concurrency, and still counts every operation.
func TestRatePacesAllClientsTogether(t *testing.T) {
	n := startNode(t)
	r, err := Run(context.Background(), Config{Addrs: []string{n.DataAddr()}, Workload: "ping", Concurrency: 8, Ops: 101, Rate: 200}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 101 || r.Errors != 0 {
		t.Fatalf("%+v", r)
	}
	if min := 100 * time.Second / 200; r.Elapsed < min {
		t.Fatalf("101 ops at 200/s took %v, less than %v: not paced", r.Elapsed, min)
	}
}

// startNode starts a node on the test broker, closed when the test ends, and
// waits until it serves.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{Brokers: kafkatest.Brokers(t), Cluster: kafkatest.ClusterName(t), DataDir: t.TempDir(),
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "t", HTTPAddr: "-", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for !n.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}
