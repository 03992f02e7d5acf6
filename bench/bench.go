// Package bench is sluice's load generator (`sluice bench`): workloads
// against a running cluster, live progress, and a result with HDR-histogram
// percentiles that can be written as JSON and plotted as SVG.
//
//	r, err := bench.Run(ctx, bench.Config{Addrs: []string{"127.0.0.1:7400"}, Workload: "upsert-batch", Duration: 10 * time.Second}, os.Stderr)
//	r.Print(os.Stdout)
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/client"
)

// Config describes a run. Zero values take the defaults written on each field.
type Config struct {
	// Addrs are data-plane addresses of nodes (the client routes by key).
	Addrs []string `json:"addrs"`
	// Workload is one of Workloads. Default upsert-batch.
	Workload string `json:"workload"`
	// ValueSize is the bytes of each value. Default 100.
	ValueSize int `json:"value_size"`
	// Keys is the key space. Default 100,000.
	Keys int `json:"keys"`
	// KeyPrefix starts every key the workloads write and read (then
	// eight digits). Default "bench-": a benchmark against a node in use
	// does not overwrite its keys.
	KeyPrefix string `json:"key_prefix"`
	// Dist is "uniform", "zipfian" (s=1.1) or "sequential" (all clients
	// together take keys 0, 1, 2, … in turn, wrapping at Keys: a fill of
	// exactly Keys distinct keys). Default uniform.
	Dist string `json:"dist"`
	// Batch is the keys per upsert-batch, get-many and scan. Default 100.
	Batch int `json:"batch"`
	// Concurrency is the number of clients. Default 32.
	Concurrency int `json:"concurrency"`
	// Duration bounds the run; Ops, if set, stops it after that many operations.
	// Default 10s.
	Duration time.Duration `json:"duration_ns"`
	Ops      int64         `json:"ops,omitempty"`
	// Rate, if set, paces all clients together to this many operations a
	// second. Each latency is then measured from when its operation was due,
	// not from when a free client sent it, so time queued behind a slow server
	// counts (no coordinated omission).
	Rate float64 `json:"rate,omitempty"`
	// Brokers and Cluster are needed by the ingest workload.
	Brokers []string `json:"brokers,omitempty"`
	Cluster string
	// Kafka are extra options of the ingest workload's producer: TLS and
	// SASL (node.KafkaSecurity.Opts).
	Kafka []kgo.Opt `json:"-"`
	// Client are the options of the data-plane clients (a data token, TLS).
	Client []client.Option `json:"-"`
}

// Workloads are the operations a run can make, and what one operation is.
var Workloads = map[string]string{
	"upsert-batch":      "Upsert of Batch keys (one op = one batch; keys/s = ops/s × Batch)",
	"upsert":            "Upsert of one key",
	"get":               "linearizable Get of one key",
	"get-session":       "SESSION Get of one key (with the client's own session)",
	"get-eventual":      "EVENTUAL Get of one key",
	"get-many":          "linearizable GetMany of Batch keys (one op = one call; keys/s = ops/s × Batch)",
	"get-many-eventual": "EVENTUAL GetMany of Batch keys",
	"scan":              "linearizable Scan of Batch keys from a random key (every partition; keys/s = ops/s × Batch)",
	"mix-90-10":         "90% linearizable Gets, 10% single-key Upserts",
	"mix-50-50":         "50% linearizable Gets, 50% single-key Upserts",
	"ingest":            "produce one record to <cluster>.ingest (acks=all), through Kafka",
	"ping":              "gRPC health check of the first address: the RPC ceiling, no partition involved",
	"watch":             "single-key Upserts (--rate in all) while a Watch of their prefix runs: every acknowledged write must arrive, in order per key; reports ack → event latency",
}

func (c *Config) defaults() error {
	if c.Workload == "" {
		c.Workload = "upsert-batch"
	}
	if _, ok := Workloads[c.Workload]; !ok {
		return fmt.Errorf("bench: unknown workload %q", c.Workload)
	}
	if c.ValueSize == 0 {
		c.ValueSize = 100
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "bench-"
	}
	if c.Keys == 0 {
		c.Keys = 100_000
	}
	if c.Dist == "" {
		c.Dist = "uniform"
	}
	if c.Dist != "uniform" && c.Dist != "zipfian" && c.Dist != "sequential" {
		return fmt.Errorf("bench: unknown key distribution %q", c.Dist)
	}
	if c.Batch == 0 {
		c.Batch = 100
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.Duration == 0 && c.Ops == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rate < 0 {
		return fmt.Errorf("bench: rate %v must not be negative", c.Rate)
	}
	if c.Workload == "ingest" && (len(c.Brokers) == 0 || c.Cluster == "") {
		return fmt.Errorf("bench: the ingest workload needs --brokers and --cluster")
	}
	return nil
}

// Batched says whether one operation of the workload is Batch keys.
func (c Config) Batched() bool {
	switch c.Workload {
	case "upsert-batch", "get-many", "get-many-eventual", "scan":
		return true
	}
	return false
}

// op is one operation of a workload; rng and keys are the caller goroutine's.
type op func(ctx context.Context, rng *rand.Rand, key func() []byte) error

// Result is what a run measured.
type Result struct {
	Config Config `json:"config"`
	Ops    int64  `json:"ops"`
	Errors int64  `json:"errors"`
	// Causes are the errors by code and message, the most frequent first.
	Causes    []Cause       `json:"causes,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	OpsPerSec float64       `json:"ops_per_sec"`
	// Latency percentiles, milliseconds.
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	// Timeline is ops/s and p99 (ms) per second of the run, for plots.
	Timeline []Second `json:"timeline"`
}

// Second is one second of a run.
type Second struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P99       float64 `json:"p99_ms"`
}

// Run runs the workload and reports progress to progress (a line a second).
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	w, closeW, err := newWorkload(cfg)
	if err != nil {
		return nil, err
	}
	defer closeW()
	seq := new(atomic.Uint64)
	// One untimed operation per client first: connections and routes are made
	// lazily, and a paced run must not start behind its schedule.
	var warm sync.WaitGroup
	warmErrs := make([]error, cfg.Concurrency)
	for c := range cfg.Concurrency {
		warm.Add(1)
		go func() {
			defer warm.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			warmErrs[c] = w(ctx, rng, keyFunc(cfg, rng, seq))
		}()
	}
	warm.Wait()
	// No node reached at all: say so at once, not after a run of errors.
	var ce *client.ConnectError
	if errors.As(warmErrs[0], &ce) && !slices.ContainsFunc(warmErrs, func(err error) bool { return !errors.As(err, &ce) }) {
		return nil, fmt.Errorf("bench: %w", warmErrs[0])
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	// Each client records into its own histograms (no shared lock on the hot
	// path); the ticker merges them once a second.
	type recorder struct {
		mu            sync.Mutex
		total, window *hdrhistogram.Histogram
	}
	newHist := func() *hdrhistogram.Histogram { return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3) }
	var (
		recs    = make([]*recorder, cfg.Concurrency)
		ops     atomic.Int64
		errs    atomic.Int64
		why     causes
		wg      sync.WaitGroup
		start   = time.Now()
		seconds []Second
	)
	// due says when the client's next operation is due (now if unpaced) and
	// waits for it. Paced, the n-th operation of the run is due at
	// start + n/Rate: a fixed schedule (not a token bucket, which loses the
	// slots no client was free to take), so the run offers exactly Rate and
	// an operation that waited for a free client counts that wait.
	due := func(context.Context) time.Time { return time.Now() }
	if cfg.Rate > 0 {
		var next atomic.Int64
		interval := float64(time.Second) / cfg.Rate
		due = func(ctx context.Context) time.Time {
			at := start.Add(time.Duration(float64(next.Add(1)-1) * interval))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
			}
			return at
		}
	}
	done := make(chan struct{})
	for c := 0; c < cfg.Concurrency; c++ {
		rec := &recorder{total: newHist(), window: newHist()}
		recs[c] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(c)))
			key := keyFunc(cfg, rng, seq)
			for ctx.Err() == nil {
				if cfg.Ops > 0 && ops.Add(1) > cfg.Ops {
					return
				}
				t0 := due(ctx)
				err := w(ctx, rng, key)
				us := max(time.Since(t0).Microseconds(), 1)
				if err != nil {
					if over(ctx) {
						return // cut by the run's end, not an error
					}
					errs.Add(1)
					why.add(err)
					continue
				}
				if cfg.Ops == 0 {
					ops.Add(1)
				}
				rec.mu.Lock()
				rec.total.RecordValue(us)
				rec.window.RecordValue(us)
				rec.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			window := newHist()
			for _, r := range recs {
				r.mu.Lock()
				window.Merge(r.window)
				r.window.Reset()
				r.mu.Unlock()
			}
			n := window.TotalCount()
			p99 := float64(window.ValueAtQuantile(99)) / 1000
			seconds = append(seconds, Second{OpsPerSec: float64(n), P99: p99})
			line := fmt.Sprintf("%4ds  %9.0f ops/s  p99 %7.2f ms  errors %d", len(seconds), float64(n), p99, errs.Load())
			if cfg.Ops > 0 {
				line += "  " + bar(min(ops.Load(), cfg.Ops), cfg.Ops)
			}
			fmt.Fprintln(progress, line)
		}
	}
	total := newHist()
	for _, r := range recs {
		total.Merge(r.total)
	}
	elapsed := time.Since(start)
	n := total.TotalCount()
	ms := func(q float64) float64 { return float64(total.ValueAtQuantile(q)) / 1000 }
	return &Result{
		Config: cfg, Ops: n, Errors: errs.Load(), Causes: why.list(), Elapsed: elapsed, OpsPerSec: float64(n) / elapsed.Seconds(),
		P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: float64(total.Max()) / 1000, Timeline: seconds,
	}, nil
}

// keyFunc draws keys KeyPrefix + "%08d" from the configured distribution;
// seq is the run's counter, shared by its clients, for "sequential".
func keyFunc(cfg Config, rng *rand.Rand, seq *atomic.Uint64) func() []byte {
	draw := func() uint64 { return uint64(rng.IntN(cfg.Keys)) }
	switch cfg.Dist {
	case "zipfian":
		z := rand.NewZipf(rng, 1.1, 1, uint64(cfg.Keys-1))
		draw = z.Uint64
	case "sequential":
		draw = func() uint64 { return (seq.Add(1) - 1) % uint64(cfg.Keys) }
	}
	return func() []byte { return fmt.Appendf(nil, "%s%08d", cfg.KeyPrefix, draw()) }
}

func bar(done, total int64) string {
	const width = 30
	filled := int(math.Round(float64(done) / float64(total) * width))
	b := make([]byte, width)
	for i := range b {
		if i < filled {
			b[i] = '#'
		} else {
			b[i] = '.'
		}
	}
	return fmt.Sprintf("[%s] %d/%d", b, done, total)
}

// Print writes the result as a short table.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "workload %s: %d ops in %.1fs, %d errors, concurrency %d, %d keys (%s), %d-byte values\n",
		r.Config.Workload, r.Ops, r.Elapsed.Seconds(), r.Errors, r.Config.Concurrency, r.Config.Keys, r.Config.Dist, r.Config.ValueSize)
	if r.Config.Batched() {
		fmt.Fprintf(w, "throughput  %.0f calls/s = %.0f keys/s\n", r.OpsPerSec, r.OpsPerSec*float64(r.Config.Batch))
	} else {
		fmt.Fprintf(w, "throughput  %.0f ops/s\n", r.OpsPerSec)
	}
	fmt.Fprintf(w, "latency ms  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", r.P50, r.P90, r.P99, r.P999, r.Max)
	r.printProblems(w)
}

// over says whether the run has ended. Its deadline can pass before its
// context says so (the context's timer fires late on a loaded machine): a
// gRPC call made meanwhile fails at once with DeadlineExceeded, and a
// client that counted those counted a thousand errors in the run's last
// millisecond.
func over(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
