package core

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/wal"
)

// TestScripts runs the scripts in testdata/: one command per input of the
// core, each printing the Ready it produced. Rewrite the expected output
// with `go test ./partition/core -run TestScripts -rewrite`.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := newHarness()
		datadriven.RunTest(t, path, h.run)
	})
}

// harness drives the core with the driver the loop uses (driver.go), over a
// fake store and log, and prints what each Ready asks for (its effects).
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

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	var out strings.Builder
	h.t, h.out = t, &out
	switch d.Cmd {
	case "config":
		*h = *newHarness()
		for _, a := range d.CmdArgs {
			v := ""
			if len(a.Vals) > 0 {
				v = a.Vals[0]
			}
			switch a.Key {
			case "lease":
				h.cfg.Lease = dur(t, v)
			case "window":
				h.cfg.WindowSize = atoi(t, v)
			case "max-group-bytes":
				h.cfg.MaxGroupBytes = atoi(t, v)
			case "range":
				from, to, _ := strings.Cut(v, "-")
				h.cfg.Range = keyspace.Range{From: int32(atoi(t, from)), To: int32(atoi(t, to))}
			case "manual-apply":
				h.manual = true
			case "stages":
				stages, err := pipeline.NewRegistry().ParseConfig([]byte(d.Input))
				if err != nil {
					t.Fatal(err)
				}
				h.cfg.Stages = stages
			default:
				t.Fatalf("config: unknown %s", a.Key)
			}
		}
		h.c = New(h.cfg)
		h.d = NewDriver(h.c, h, nil, h, h.manual)
		h.t, h.out = t, &out
		h.d.Start()
	case "store":
		// store k=v@version ...: the committed state before the partition starts.
		for _, f := range strings.Fields(d.Input) {
			k, rest, _ := strings.Cut(f, "=")
			v, ver, _ := strings.Cut(rest, "@")
			h.store[k] = kv.Read{Value: kv.Value{Data: []byte(v), Version: uint64(atoi(t, ver))}, Found: v != "~"}
		}
	case "restored":
		r := Restore{FencedAt: h.now, Ingest: map[int32]int64{}}
		for _, a := range d.CmdArgs {
			switch a.Key {
			case "fenced-ago":
				r.FencedAt = h.now.Add(-dur(t, a.Vals[0]))
			case "skip-lease-wait":
				r.SkipLeaseWait = true
			case "deposed":
				r.Err = fmt.Errorf("%w: a newer epoch wrote the log", ErrDeposed)
			case "ingest":
				for _, v := range a.Vals {
					s, o, _ := strings.Cut(v, "/")
					r.Ingest[int32(atoi(t, s))] = int64(atoi(t, o))
				}
			}
		}
		h.d.Restored(r)
	case "tick":
		h.now = h.now.Add(dur(t, d.CmdArgs[0].Key))
		h.d.Tick()
	case "upsert", "cas":
		req := &Request{Op: OpUpsert}
		for _, a := range d.CmdArgs {
			switch a.Key {
			case "ttl":
				for i := range req.Entries {
					req.Entries[i].TTL = dur(t, a.Vals[0])
				}
			default:
				e := kv.Entry{Key: []byte(a.Key)}
				if len(a.Vals) > 0 {
					val, expect, hasExpect := strings.Cut(a.Vals[0], "@")
					e.Value = []byte(val)
					if hasExpect {
						x := uint64(atoi(t, expect))
						e.Expected = &x
					}
				}
				req.Entries = append(req.Entries, e)
			}
		}
		h.request(req, &out)
	case "get":
		h.request(&Request{Op: OpGet, Key: []byte(d.CmdArgs[0].Key)}, &out)
	case "get-many":
		req := &Request{Op: OpGetMany}
		for _, a := range d.CmdArgs {
			req.Keys = append(req.Keys, []byte(a.Key))
		}
		h.request(req, &out)
	case "rm":
		h.request(&Request{Op: OpRemove, Key: []byte(d.CmdArgs[0].Key)}, &out)
	case "incr":
		req := &Request{Op: OpIncrement, Key: []byte(d.CmdArgs[0].Key), Delta: int64(atoi(t, d.CmdArgs[1].Key))}
		for _, a := range d.CmdArgs[2:] {
			if a.Key == "ttl" {
				req.TTL = dur(t, a.Vals[0])
			}
		}
		h.request(req, &out)
	case "ingest":
		// ingest [gen=N]: one record a line: slot/offset key=value | key=~ (remove) | key!err
		req := &Request{Op: OpIngest, Gen: h.ingestGen}
		for _, a := range d.CmdArgs {
			if a.Key == "gen" {
				req.Gen = uint64(atoi(t, a.Vals[0]))
			}
		}
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			pos, rec, _ := strings.Cut(line, " ")
			s, o, _ := strings.Cut(pos, "/")
			r := kv.IngestRecord{Slot: int32(atoi(t, s)), Offset: int64(atoi(t, o))}
			switch {
			case strings.Contains(rec, "!"):
				k, why, _ := strings.Cut(rec, "!")
				r.Key, r.Err = []byte(k), fmt.Errorf("%w: %s", kv.ErrInvalid, why)
			default:
				k, v, _ := strings.Cut(rec, "=")
				r.Key = []byte(k)
				if v == "~" {
					r.Remove = true
				} else if strings.HasPrefix(v, "big:") {
					r.Value = make([]byte, atoi(t, v[4:]))
				} else {
					r.Value = []byte(v)
				}
			}
			req.Ingest = append(req.Ingest, r)
		}
		h.request(req, &out)
	case "append-ok":
		g := h.take(t)
		offs := make([]int64, len(g.Records))
		for i, r := range g.Records {
			offs[i] = h.log[r.Slot]
			h.log[r.Slot]++
		}
		h.d.Appended(g.N, offs, nil)
	case "append-fail":
		g := h.take(t)
		err := fmt.Errorf("%w: refused", wal.ErrNotCommitted)
		if d.HasArg("permanent") {
			err = fmt.Errorf("%w (%w): MESSAGE_TOO_LARGE", wal.ErrNotCommitted, wal.ErrPermanent)
		}
		h.d.Appended(g.N, nil, err)
	case "append-unknown":
		g := h.take(t)
		h.d.Appended(g.N, nil, fmt.Errorf("%w: the broker went silent", wal.ErrCommitUnknown))
	case "apply":
		var err error
		if d.HasArg("fail") {
			err = errors.New("disk full")
		}
		h.failNext = err
		if !h.d.ApplyNext() {
			t.Fatal("nothing to apply")
		}
	case "prefetch":
		// prefetch k...: a caller reads keys from the store now, for the next request.
		h.pre = map[string]Read{}
		for _, a := range d.CmdArgs {
			h.pre[a.Key] = Read{Read: h.store[a.Key], OK: true, Seen: h.c.Applies()}
		}
		return ""
	case "close":
		h.d.Close()
	case "kill":
		h.d.Kill()
	case "state":
		fmt.Fprintf(&out, "state %s held %d busy %v applies %d\n", h.c.State(), h.c.Held(), h.c.Busy(), h.c.Applies())
		keys := make([]string, 0, len(h.store))
		for k := range h.store {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&out, "store %s\n", readString(k, h.store[k]))
		}
		return out.String()
	default:
		t.Fatalf("unknown command %s", d.Cmd)
	}
	return out.String()
}

// request gives the request the values prefetched (by the prefetch
// command) and steps it: the driver reads the store for what Stale names.
func (h *harness) request(req *Request, out *strings.Builder) {
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

// The harness's store (driver.go's Store): a map.

func (h *harness) Apply(b kv.Batch) error {
	if err := h.failNext; err != nil {
		h.failNext = nil
		return err
	}
	for _, c := range b.Changes {
		h.store[string(c.Key)] = c.Read()
	}
	for s, o := range b.Offsets {
		h.offsets[s] = o
	}
	return nil
}

func (h *harness) GetMany(keys [][]byte) ([]kv.Read, error) {
	out := make([]kv.Read, len(keys))
	for i, k := range keys {
		if h.prefetched[string(k)] {
			fmt.Fprintf(h.out, "read %s again\n", k)
		}
		out[i] = h.store[string(k)]
	}
	return out, nil
}

// The harness's effects: each prints what the Ready asked for.

func (h *harness) Now() time.Time { return h.now }
func (h *harness) StopIngest()    { fmt.Fprintln(h.out, "stop-ingest") }
func (h *harness) Reply(r Reply)  { fmt.Fprintf(h.out, "reply %s\n", replyString(r)) }

func (h *harness) Append(g *Group) {
	if h.inflight != nil {
		h.t.Fatal("a second group in flight")
	}
	h.inflight = g
	fmt.Fprintf(h.out, "append %s\n", groupString(g))
}

func (h *harness) Queued(g *Group)                { fmt.Fprintf(h.out, "apply g%d\n", g.N) }
func (h *harness) Stored(*Group, kv.Batch, error) {}

func (h *harness) Restore() {
	fmt.Fprintln(h.out, "restore")
	// The flusher of a group in flight stops; its result may still come.
	h.orphan, h.inflight = h.inflight, nil
}

func (h *harness) StartIngest(s *IngestStart) {
	h.ingestGen = s.Gen
	fmt.Fprintf(h.out, "start-ingest gen %d from %s\n", s.Gen, offsetsString(s.From))
}

func (h *harness) WakeAt(t time.Time) { fmt.Fprintf(h.out, "wake in %s\n", t.Sub(h.now)) }

func (h *harness) Stop()    { fmt.Fprintln(h.out, "stop") }
func (h *harness) Carried() {}

func replyString(r Reply) string {
	id := r.Handle.(string)
	if r.Err != nil {
		return id + ": error: " + r.Err.Error()
	}
	var parts []string
	for _, w := range r.Results {
		if w.Offset < 0 {
			parts = append(parts, "dropped")
			continue
		}
		parts = append(parts, fmt.Sprintf("v%d@%d/%d", w.Version, w.Slot, w.Offset))
	}
	for _, rd := range r.Reads {
		parts = append(parts, readString("", rd))
	}
	if r.Counter != 0 {
		parts = append(parts, fmt.Sprintf("counter=%d", r.Counter))
	}
	switch {
	case len(r.Results) == 0 && r.Reads == nil:
		parts = append(parts, readString("", r.Read))
	case r.Read.Found:
		parts = append(parts, "existed")
	}
	return id + ": ok " + strings.Join(parts, " ")
}

func readString(k string, r kv.Read) string {
	if k != "" {
		k += "="
	}
	if !r.Found {
		if r.Value.Version > 0 {
			return fmt.Sprintf("%s(absent v%d)", k, r.Value.Version)
		}
		return k + "(absent)"
	}
	s := fmt.Sprintf("%s%s v%d", k, r.Value.Data, r.Value.Version)
	if r.Value.ExpiresAt != 0 {
		s += " ttl"
	}
	return s
}

func groupString(g *Group) string {
	var parts []string
	for _, r := range g.Records {
		switch r.Kind {
		case kv.KindMark:
			parts = append(parts, fmt.Sprintf("mark %d/%d", r.Ingest.Slot, r.Ingest.Offset))
		case kv.KindHeartbeat:
			parts = append(parts, "heartbeat")
		default:
			c := r.Change
			s := fmt.Sprintf("%s=%s v%d", c.Key, c.Value, c.Version)
			if c.Remove {
				s = fmt.Sprintf("%s removed v%d", c.Key, c.Version)
			}
			if c.ExpiresAt != 0 {
				s += " ttl=" + time.UnixMilli(int64(c.ExpiresAt)).Sub(clock.Wall(c.Timestamp)).String()
			}
			if r.Ingest != nil {
				s += fmt.Sprintf(" from %d/%d", r.Ingest.Slot, r.Ingest.Offset)
			}
			parts = append(parts, s)
		}
	}
	for _, d := range g.DeadLetters {
		parts = append(parts, fmt.Sprintf("dlq %d/%d (%s)", d.Record.Slot, d.Record.Offset, d.Reason))
	}
	for _, f := range g.Forwards {
		parts = append(parts, fmt.Sprintf("forward %d/%d to slot %d", f.Record.Slot, f.Record.Offset, f.Slot))
	}
	return fmt.Sprintf("g%d: %s", g.N, strings.Join(parts, "; "))
}

func offsetsString(m map[int32]int64) string {
	slots := make([]int32, 0, len(m))
	for s := range m {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	var parts []string
	for _, s := range slots {
		parts = append(parts, fmt.Sprintf("%d/%d", s, m[s]))
	}
	return "[" + strings.Join(parts, " ") + "]"
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
