package core

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
)

// TestScripts runs the scripts in testdata/ (their notation:
// testdata/README.md): one command per input of the core, each printing the
// Ready it produced. Each command has its handler (script_handler_*_test.go,
// as etcd-io/raft's interaction_env_handler_*.go). Rewrite the expected
// output with `go test ./partition/core -run TestScripts -rewrite`.
func TestScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, path := range scripts {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			h := newHarness()
			datadriven.RunTest(t, path, h.run)
		})
	}
}

// harness drives the core with the driver the loop uses (driver.go), over a
// fake store and log, and prints what each Ready asks for (its effects,
// script_effects_test.go).
type harness struct {
	c   *Core
	d   *Driver
	cfg Config
	now time.Time
	t   *testing.T
	out *strings.Builder // the current command's output
	// store is the committed state the harness applied; offsets per slot.
	store   map[string]kv.Read
	offsets map[int32]int64
	// log is the next offset per slot of the fake log.
	log        map[int32]int64
	manual     bool // apply only on the apply command (a held driver)
	failNext   error
	inflight   *Group
	orphan     *Group // in flight when a restore began
	pre        map[string]Read
	prefetched map[string]bool // the current request's keys read by prefetch
	nextID     int
	ingestGen  uint64
}

func newHarness() *harness {
	return &harness{
		cfg:     Config{ID: 1, Range: keyspace.Range{From: 0, To: 8}, Slots: 8, Epoch: 1, Lease: time.Second, WindowSize: 16},
		now:     time.UnixMilli(1_700_000_000_000),
		store:   map[string]kv.Read{},
		offsets: map[int32]int64{},
		log:     map[int32]int64{},
	}
}

// handlers are the script's commands: each carries out one input and
// writes what the Readys that follow asked for to h.out.
var handlers map[string]func(h *harness, t *testing.T, d *datadriven.TestData)

func init() {
	handlers = map[string]func(h *harness, t *testing.T, d *datadriven.TestData){
		"config":         handleConfig,
		"store":          handleStore,
		"restored":       handleRestored,
		"tick":           handleTick,
		"upsert":         handleUpsert,
		"cas":            handleUpsert,
		"get":            handleGet,
		"get-many":       handleGetMany,
		"rm":             handleRemove,
		"incr":           handleIncrement,
		"ingest":         handleIngest,
		"prefetch":       handlePrefetch,
		"append-ok":      handleAppendOK,
		"append-fail":    handleAppendFail,
		"append-unknown": handleAppendUnknown,
		"apply":          handleApply,
		"close":          handleClose,
		"kill":           handleKill,
		"state":          handleState,
	}
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	var out strings.Builder
	h.t, h.out = t, &out
	handle, ok := handlers[d.Cmd]
	if !ok {
		t.Fatalf("unknown command %s (testdata/README.md lists them)", d.Cmd)
	}
	handle(h, t, d)
	return out.String()
}

// request gives the request the values prefetched (by the prefetch
// command) and steps it: the driver reads the store for what Stale names.
func (h *harness) request(req *Request) {
	h.nextID++
	req.Handle = "r" + strconv.Itoa(h.nextID)
	req.Reads = make([]Read, req.NumKeys())
	h.prefetched = map[string]bool{}
	for i := range req.Reads {
		if r, ok := h.pre[string(req.KeyAt(i))]; ok {
			req.Reads[i] = r
			h.prefetched[string(req.KeyAt(i))] = true
		}
	}
	h.pre = nil
	h.d.Step(req)
}

// take is the group in flight (or the one a restore orphaned), now answered.
func (h *harness) take(t *testing.T) *Group {
	g := h.inflight
	if g == nil {
		g, h.orphan = h.orphan, nil
	}
	if g == nil {
		t.Fatal("no group in flight")
	}
	h.inflight = nil
	return g
}

func dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
