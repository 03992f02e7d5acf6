package partition

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluicedb/sluice/internal/kvmodel"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/wal"
)

// foundSeeds are seeds that once showed a defect in the code outside the
// simulator, replayed at every run. (A change to the simulator's draws
// changes what a seed plays, so each keeps its defect in view only until
// then; the campaign over fresh seeds is what finds the next one.)
var foundSeeds = []struct {
	seed uint64
	what string
}{
	// --wal disk: an owner whose claim in the bucket failed served on; the
	// next owner's seed did not wait for its final snapshot, which was then
	// refused, and what it acknowledged was lost.
	{1796671301852835106, "disk owner serving unclaimed"},
}

func TestSimulationFoundSeeds(t *testing.T) {
	for _, f := range foundSeeds {
		if r := simulate(f.seed); r.violation != "" {
			t.Errorf("seed %d (%s): %s (replay: SLUICE_SEED=%d go test ./partition -run TestSimulation -v)", f.seed, f.what, r.violation, f.seed)
		}
	}
}

// TestSimulation drives the partition core and its driver from many seeds
// through the simulated world (sim_world_test.go): clients, faults, owner
// changes and time, all from one seed. The seed also chooses the storage
// mode (simModes): the Kafka log (the fake log with fencing), --wal disk
// (sim_disk_test.go: wal/local's Disk over a store whose syncs and reads
// fail, moved through the snapshot bucket), or either under --store cached
// (sim_cached_test.go: the real store.Cached over a durable store whose
// reads fail, re-synced by node's rule, Cached.AtRestore; at the end the
// cache must not be behind the durable store), or --wal none
// (sim_none_test.go: wal/local's None over a memory store, backed up when
// snapshot.Backups says so). The modes with no log to replay hand off with
// the real snapshot code, node's seed included (snapshot.Seed), through a
// memblob bucket that fails calls and receives paused owners' uploads late
// (sim_handoff_test.go); they are checked in eras from each seed, against
// "a restore loads the newest snapshot in the bucket" (in none: a crash
// loses exactly the writes since the newest backup), "a planned move
// through the final snapshot loses nothing" and the lease. Every
// run is checked: the linearizable history
// with porcupine, the final state against a replay of the log, every
// "not applied" answer against the log, committed reads, exactly-once
// ingest. A failing seed replays exactly:
//
//	SLUICE_SEED=123 go test ./partition -run TestSimulation -v
//
// SLUICE_SIM=10m runs seeds for that long (make sim) and prints a summary.
//
// Proof of power, measured on 2026-12-07 on the project's 2-core machine
// (shared) with SLUICE_SIM=60s go test -run TestSimulation ./partition -v,
// five runs each, the defect put back and then taken out again:
//
//   - a re-sync that leaves the cache behind the durable store (Cached.Resync
//     not dropping on a re-sync): found at seed 7, 15, 10, 7 and 4 of the run
//     (the 1st, 2nd, 1st, 1st and 1st disk+cached seed), after 155, 289,
//     108, 144 and 213 ms, by porcupine (a CAS against a stale version);
//   - a restore that picks the snapshot of the larger offset sum over the
//     newer epoch (snapshot's newer without the epoch): found at seed 9, 25,
//     8, 48 and 68 (the 2nd, 5th, 2nd, 10th and 14th none seed), after 171,
//     553, 126, 859 and 1167 ms: the restore is not the newest backup in
//     the bucket.
//
// And once node and the simulator shared the rules (issue 25), measured the
// same way (SLUICE_SIM_FIRST=1: the run stops at the first violation),
// five runs each:
//
//   - the cache kept as it is at a re-sync (Cached.AtRestore making it
//     current only at the first restore): found at seed 4, 29, 23, 79 and
//     44 of the run (the 1st, 3rd, 3rd, 8th and 5th disk+cached seed),
//     after 119 ms, 1.5 s, 785 ms, 1.7 s and 1.4 s, by porcupine and by a
//     session read older than its client's write. Keeping it only if in
//     step at every restore (the rule dropped) is not found in 60 s (1430
//     seeds): the simulated stores hold no write that a read saw and a
//     failed sync then lost, so a cache in step by its offsets is never
//     stale here;
//   - a seed that does not wait for the previous owner's final snapshot
//     (snapshot.Seed going on at once): found at seed 3, 1, 3, 3 and 3 (the
//     1st disk+cached, disk, disk+cached, disk and disk seed), after 146,
//     19, 121, 92 and 188 ms: the old owner's final snapshot was refused,
//     the new owner having claimed the partition within its wait, or the
//     new owner did not restore it;
//   - a restore that takes the oldest snapshot that fits instead of the
//     newest (Bucket.Restore's order reversed): found at seed 5, 1, 3, 2
//     and 4 (the 1st none, disk+cached, disk and none seed, the 2nd disk
//     seed), after 93, 70, 47, 117 and 63 ms: the restore is not the newest
//     backup in the bucket.
func TestSimulation(t *testing.T) {
	if s := os.Getenv("SLUICE_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		simTrace = testing.Verbose()
		if r := simulate(seed); r.violation != "" {
			t.Fatalf("seed %d: %s", seed, r.violation)
		}
		return
	}
	seeds, until := 1500, time.Time{}
	if testing.Short() {
		seeds = 200
	}
	if d, err := time.ParseDuration(os.Getenv("SLUICE_SIM")); err == nil {
		seeds, until = 1<<62, time.Now().Add(d)
	}
	var sum simResult
	start := time.Now()
	base := uint64(time.Now().UnixNano())
	runs := 0
	var modes map[string]int // seeds per storage mode
	var took map[string]time.Duration
	var opsBy, faultsBy map[string]int // operations checked and faults injected per mode
	for i := 0; i < seeds && (until.IsZero() || time.Now().Before(until)); i++ {
		seed := base + uint64(i)
		began := time.Now()
		r := simulate(seed)
		if took == nil {
			took = map[string]time.Duration{}
		}
		took[r.mode] += time.Since(began)
		if opsBy == nil {
			opsBy, faultsBy = map[string]int{}, map[string]int{}
		}
		opsBy[r.mode] += r.ops
		for _, n := range r.faults {
			faultsBy[r.mode] += n
		}
		runs++
		sum.ops += r.ops
		if modes == nil {
			modes = map[string]int{}
		}
		modes[r.mode]++
		for k, v := range r.faults {
			if sum.faults == nil {
				sum.faults = map[string]int{}
			}
			sum.faults[k] += v
		}
		if r.violation != "" {
			t.Errorf("seed %d (seed %d of this run, %d of mode %s, found after %s): %s (replay: SLUICE_SEED=%d go test ./partition -run TestSimulation)",
				seed, runs, modes[r.mode], r.mode, time.Since(start).Round(time.Millisecond), r.violation, seed)
			sum.violations++
			if sum.violations >= 3 || os.Getenv("SLUICE_SIM_FIRST") != "" {
				break
			}
		}
	}
	for m, d := range took {
		took[m] = d.Round(time.Millisecond)
	}
	t.Logf("simulation: %d seeds (per storage mode %v, time per mode %v, operations per mode %v, faults per mode %v), %d operations checked, faults injected %v, %d violations, in %s",
		runs, modes, took, opsBy, faultsBy, sum.ops, sum.faults, sum.violations, time.Since(start).Round(time.Millisecond))
	if !until.IsZero() {
		fmt.Printf("sim summary: seeds=%d operations=%d faults=%v violations=%d\n", runs, sum.ops, sum.faults, sum.violations)
	}
}

type simResult struct {
	mode       string
	ops        int
	faults     map[string]int
	violations int
	violation  string
}

// simClient runs operations one after another against whoever the registry
// says owns the partition.
type simClient struct {
	w       *world
	id      int
	n       int
	h       *kvmodel.History
	session map[int32]int64
	acked   map[string]uint64 // the newest version this client's writes made, per key
	checks  *simChecks
	stop    bool
	// route is the owner this client believes in: a cached routing table
	// learns of a move late, or on an error.
	route *inst
	// waiting is the request in flight, if any: every request gets a reply.
	waiting string
}

// simChecks collects what the end of a run checks beside the history.
type simChecks struct {
	notApplied map[string]bool // values of writes answered "not applied"
	observed   []kv.Read       // with keys: committed reads that skipped the inbox
	keys       []string
	ops        int
}

// simCall is one request in flight and what its reply does.
type simCall struct {
	done func(core.Reply)
	// decided is when the owner sent the reply (it arrives later).
	decided time.Time
}

// simModes are the storage modes a seed may choose (seed % len): a cached
// mode's seed costs about ten of another's (a Badger cache opened at each
// start), so they come up less often, keeping the suite's 1500 seeds under
// a minute.
var simModes = []string{"kafka", "disk", "none", "kafka", "disk+cached", "kafka", "disk", "none", "kafka+cached", "disk"}

var (
	simKeys     = []string{"k0", "k1", "k2", "k3", "k4"}
	simCounters = []string{"n0", "n1"}
)

func (c *simClient) next() {
	w := c.w
	if c.stop {
		return
	}
	c.n++
	value := fmt.Sprintf("c%d-%d", c.id, c.n)
	key := simKeys[w.rng.IntN(len(simKeys))]
	in := kvmodel.Input{Key: key, Value: value}
	req := &core.Request{}
	switch r := w.rng.IntN(100); {
	case r < 30:
		in.Op, req.Op, req.Key = "get", core.OpGet, []byte(key)
	case r < 50:
		in.Op, req.Op = "put", core.OpUpsert
		req.Entries = []kv.Entry{{Key: []byte(key), Value: []byte(value)}}
		if w.chance(0.3) { // a batch: another key in the same request
			other := simKeys[w.rng.IntN(len(simKeys))]
			req.Entries = append(req.Entries, kv.Entry{Key: []byte(other), Value: []byte(value + "b")})
		}
		if w.chance(0.05) { // a write the pipeline drops whole
			in.Op = "dropped"
			req.Entries = []kv.Entry{{Key: []byte("tmp/" + key), Value: []byte(value)}}
		}
	case r < 65:
		in.Op, req.Op, in.Expect = "cas", core.OpUpsert, c.acked[key]
		expect := in.Expect
		req.Entries = []kv.Entry{{Key: []byte(key), Value: []byte(value), Expected: &expect}}
	case r < 75:
		in.Op, req.Op, req.Key = "rm", core.OpRemove, []byte(key)
	case r < 88:
		key = simCounters[w.rng.IntN(len(simCounters))]
		in = kvmodel.Input{Op: "incr", Key: key, Delta: int64(w.rng.IntN(5) - 1)}
		req.Op, req.Key, req.Delta = core.OpIncrement, []byte(key), in.Delta
	default:
		c.committedRead(key)
		return
	}
	if w.chance(w.faults.move) {
		w.move()
		for _, o := range w.clients {
			owner := w.owner
			w.after(w.dur(0, 2*time.Second), func() { o.route = owner })
		}
	}
	if w.chance(w.faults.crash) {
		w.crash()
		for _, o := range w.clients {
			o.route = w.owner // the restarted process has the old one's address
		}
	}
	if w.chance(w.faults.pause) {
		w.injected["pause"]++
		o := w.insts[w.rng.IntN(len(w.insts))]
		o.paused = maxTime(o.paused, w.now.Add(w.dur(100*time.Millisecond, 2*time.Second)))
	}
	call := w.now
	target := c.route
	c.waiting = fmt.Sprintf("%s %s %q sent at %s to i%d", in.Op, in.Key, in.Value, call.Sub(w.start), target.id)
	req.Handle = &simCall{done: func(r core.Reply) {
		c.waiting = ""
		w.trace("client %d %s %s %q at i%d -> %s", c.id, in.Op, in.Key, in.Value, target.id, replySummary(r))
		c.finish(in, req, call, r, target)
	}}
	w.after(w.dur(0, 3*time.Millisecond), func() {
		if req.Op == core.OpGet && w.chance(0.5) && target.quietRead(req) {
			return
		}
		target.prefetch(req)
		w.after(w.dur(0, 3*time.Millisecond), func() { target.step(req) })
	})
}

// finish records a reply in the history (or, for a certain failure, among
// the answers the log must bear out) and starts the next operation.
func (c *simClient) finish(in kvmodel.Input, req *core.Request, call time.Time, r core.Reply, target *inst) {
	w := c.w
	// The history it goes into: the run's, or in --wal none the era's of
	// the owner that answered (sim_none_test.go).
	hist := func() *kvmodel.History { return w.history(c.h, target, r.Handle.(*simCall).decided, r.Err == nil) }
	c.checks.ops++
	out := kvmodel.Output{}
	var refused *core.VersionMismatchError
	switch {
	case r.Err == nil && in.Op == "dropped":
		if len(r.Results) != 1 || r.Results[0].Offset != -1 {
			c.checks.keys = append(c.checks.keys, fmt.Sprintf("a write the pipeline drops answered %+v", r.Results))
		}
		c.afterThink()
		return
	case in.Op == "dropped":
		c.afterThink()
		return
	case r.Err == nil:
		switch in.Op {
		case "get":
			out.OK, out.Value, out.Version = r.Read.Found, string(r.Read.Value.Data), r.Read.Value.Version
		case "rm":
			out.OK = r.Read.Found
		case "incr":
			out.OK, out.Counter = true, r.Counter
		default:
			out.OK = true
		}
		for i, res := range r.Results {
			if i == 0 {
				out.Version = res.Version
			}
			c.session[res.Slot] = max(c.session[res.Slot], res.Offset+1)
			c.acked[string(req.KeyAt(i))] = max(c.acked[string(req.KeyAt(i))], res.Version)
		}
		if len(req.Entries) > 1 { // the batch's second entry, as a put of its own
			b := req.Entries[1]
			hist().Add(c.id, kvmodel.Input{Op: "put", Key: string(b.Key), Value: string(b.Value)}, call, kvmodel.Output{Version: r.Results[1].Version}, w.now)
		}
	case errors.As(r.Err, &refused) && in.Op == "cas":
		out.OK = false
		c.checks.notApplied[in.Value] = true
	case in.Op == "get":
		c.route = w.owner
		w.after(w.dur(10*time.Millisecond, 50*time.Millisecond), c.next)
		return
	case errors.Is(r.Err, wal.ErrCommitUnknown):
		out.Unknown = true
		if len(req.Entries) > 1 {
			b := req.Entries[1]
			hist().Add(c.id, kvmodel.Input{Op: "put", Key: string(b.Key), Value: string(b.Value)}, call, kvmodel.Output{Unknown: true}, w.now)
		}
	default:
		// Any other failure says the request was not applied. The client
		// refreshes its routes and backs off before its next try, as the Go
		// client does.
		c.route = w.owner
		for _, e := range req.Entries {
			c.checks.notApplied[string(e.Value)] = true
		}
		w.after(w.dur(10*time.Millisecond, 50*time.Millisecond), c.next)
		return
	}
	hist().Add(c.id, in, call, out, w.now)
	c.afterThink()
}

func (c *simClient) afterThink() {
	c.w.after(c.w.dur(0, 5*time.Millisecond), c.next)
}

// committedRead is an EVENTUAL or SESSION read at the owner's store, not
// through the inbox: it must see only committed state, and a SESSION read at
// least this client's own writes.
func (c *simClient) committedRead(key string) {
	w := c.w
	target := w.owner
	session := w.chance(0.5)
	deadline := w.now.Add(2 * time.Second)
	var poll func()
	poll = func() {
		if session {
			for s, o := range c.session {
				if target.published[s] < o {
					if w.now.After(deadline) {
						c.afterThink()
						return
					}
					w.after(time.Millisecond, poll)
					return
				}
			}
		}
		r, err := target.readCommitted(key)
		if err != nil { // a failed read (a fault of the durable store) answers nothing
			c.afterThink()
			return
		}
		c.checks.observed = append(c.checks.observed, kv.Read{Value: kv.Value{Data: []byte(key + "=" + string(r.Value.Data)), Version: r.Value.Version}, Found: r.Found})
		// (In --wal none a crash, in every mode of the bucket a hand-off
		// that timed out, loses what was acknowledged since the newest
		// snapshot: the era checks hold it to that instead.)
		if session && r.Value.Version < c.acked[key] && (w.bkt == nil || (w.mode != "none" && !w.bkt.lossy)) {
			c.checks.keys = append(c.checks.keys, fmt.Sprintf("session read of %s saw version %d before this client's write of version %d", key, r.Value.Version, c.acked[key]))
		}
		c.afterThink()
	}
	w.after(w.dur(0, 3*time.Millisecond), poll)
}

// quietRead is a linearizable read that skips the loop, as
// Partition.Get's (quiet.go): only while the core is quiet and its lease
// holds, from the read cache or the store; it reports whether it answered.
// (A paused process reads nothing: the usual path waits for it.)
func (in *inst) quietRead(req *core.Request) bool {
	w := in.w
	if in.killed || w.now.Before(in.paused) {
		return false
	}
	until := in.core.QuietUntil()
	if until.IsZero() || !w.now.Before(until) || in.vers.restoring.Load() {
		return false
	}
	v := &view{st: in.durable(), cache: in.vers}
	r, err := v.get(req.Key)
	if err != nil {
		return false
	}
	w.injected["quiet-read"]++
	w.trace("i%d quiet read of %s (until %v)", in.id, req.Key, until.Sub(w.start))
	in.Reply(core.Reply{Handle: req.Handle, Read: r.Live(w.now)})
	return true
}

// readCommitted is a read outside the loop, as the partition's view makes
// it (view.get): from the read cache, or from the store, caching what it
// read. Half of them cache it only some time later, as a reader racing the
// loop would, with the real code's guard (values.fill). Every read checks
// the cache against the store: an entry holding a value holds the store's
// (in --wal disk the appender writes the store before the loop's write, so
// there the cache may be behind it, never ahead).
func (in *inst) readCommitted(key string) (kv.Read, error) {
	w := in.w
	k := []byte(key)
	var r kv.Read
	var err error
	if w.chance(0.5) {
		v := &view{st: in.durable(), cache: in.vers}
		r, err = v.get(k)
	} else {
		seq, _ := in.vers.begin()
		r, err = in.durable().Get(k)
		if err == nil {
			w.after(w.dur(0, 20*time.Millisecond), func() { in.vers.fill(k, r, seq) })
		}
	}
	if err != nil {
		return r, err
	}
	if e, ok := in.vers.get(k); ok && e.hasData {
		st, err := in.durable().Get(k)
		behind := in.disk != nil && e.version < st.Value.Version
		if err == nil && !behind && (e.found != st.Found || e.version != st.Value.Version || string(e.data) != string(st.Value.Data) || e.expiresAt != st.Value.ExpiresAt) {
			w.cacheIncoherent = append(w.cacheIncoherent, fmt.Sprintf("i%d at %v: the read cache holds %s at version %d %q (found %v), the store version %d %q (found %v)",
				in.id, w.now.Sub(w.start), key, e.version, e.data, e.found, st.Value.Version, st.Value.Data, st.Found))
		}
	}
	return r, nil
}

// simulate runs one seed: clients and faults for a while, then a quiet
// period, final reads, and the checks.
func simulate(seed uint64) (res simResult) {
	f := simFaults{appendFail: 0.02, appendUnknown: 0.02, applyFail: 0.005, move: 0.003, pause: 0.003, closeOld: 0.5, crash: 0.002}
	mode := simModes[seed%uint64(len(simModes))]
	switch mode {
	case "disk", "disk+cached":
		// Each owner on its own disk: a move hands over through the
		// snapshot bucket (half of the old owners closed, the others cut
		// off and late); ingest needs Kafka.
		f = simFaults{syncFail: 0.01, readFail: 0.005, applyFail: 0.005, move: 0.004, pause: 0.003, closeOld: 0.5, crash: 0.002, bucketFail: 0.03, bucketLate: 0.1}
	case "kafka+cached":
		f.readFail = 0.005
	case "none":
		// Memory and the snapshot bucket: moves hand over through it
		// (half of the old owners closed, the others cut off and late).
		f = simFaults{move: 0.004, pause: 0.003, closeOld: 0.5, crash: 0.002, bucketFail: 0.03, bucketLate: 0.1}
	}
	w := newWorld(seed, f, mode)
	defer w.closeCaches()
	defer w.closeBucket()
	defer func() { res.mode = mode }()
	h := &kvmodel.History{}
	checks := &simChecks{notApplied: map[string]bool{}}
	var clients []*simClient
	for i := range 4 {
		c := &simClient{w: w, id: i, h: h, session: map[int32]int64{}, acked: map[string]uint64{}, checks: checks, route: w.owner}
		clients = append(clients, c)
		w.clients = append(w.clients, c)
		w.after(w.dur(0, 10*time.Millisecond), c.next)
	}
	produced := map[kv.Source]string{}
	if strings.HasPrefix(mode, "kafka") {
		produced = simIngest(w, h)
	}
	w.run(w.now.Add(3 * time.Second))
	// Quiet: no more faults, no more operations; let everything settle.
	w.faults = simFaults{}
	for _, c := range clients {
		c.stop = true
	}
	w.run(w.now.Add(30 * time.Second))
	if w.bkt != nil {
		// A graceful stop (--wal none), a planned move (--wal disk) loses
		// nothing: the owner closes, takes its final snapshot, and a new
		// owner restores it.
		old := w.owner
		if w.mode == "none" {
			old.do(old.d.Close)
			w.run(w.now.Add(time.Second))
			w.move()
		} else {
			w.move()
			old.do(old.d.Close)
		}
		w.run(w.now.Add(5 * time.Second))
	}
	final := simFinalReads(w, h)
	w.run(w.now.Add(30 * time.Second))
	if !final() {
		o := w.owner
		return simResult{violation: fmt.Sprintf("the final reads never completed: the owner i%d is %s, %d replies held, %d restores", o.id, o.core.State(), o.core.Held(), o.restores), faults: w.injected}
	}
	res = simResult{ops: len(h.Operations()), faults: w.injected}
	if w.bkt != nil {
		for _, e := range w.bkt.eras {
			res.ops += len(e.h.Operations())
		}
	}
	for _, c := range clients {
		if c.waiting != "" {
			res.violation = fmt.Sprintf("client %d never got a reply to %s", c.id, c.waiting)
			return res
		}
	}
	if len(w.cacheIncoherent) > 0 {
		res.violation = w.cacheIncoherent[0]
	} else if res.violation = simCheck(w, h, checks, produced); res.violation == "" {
		res.violation = simCacheCheck(w)
	}
	if res.violation == "" && w.bkt != nil {
		res.violation = w.bkt.check()
	}
	return res
}

// simIngest produces ingest records at random times: upserts with unique
// values and, now and then, one that cannot be read (for the DLQ).
func simIngest(w *world, h *kvmodel.History) map[kv.Source]string {
	produced := map[kv.Source]string{}
	for i := range 20 {
		at := w.dur(0, 2500*time.Millisecond)
		w.after(at, func() {
			slot := int32(w.rng.IntN(simSlots))
			key := simKeys[w.rng.IntN(len(simKeys))]
			r := kv.IngestRecord{Slot: slot, Offset: int64(len(w.ingest[slot])), Key: []byte(key), Value: []byte(fmt.Sprintf("ingest-%d", i))}
			if w.chance(0.1) {
				r.Err = fmt.Errorf("%w: header ttl=x", kv.ErrInvalid)
			} else {
				h.Add(100+i, kvmodel.Input{Op: "put", Key: key, Value: string(r.Value)}, w.now, kvmodel.Output{Unknown: true}, w.now)
			}
			// Any partitioner: the sim's partition owns every slot, so the
			// record applies where it lands.
			w.ingest[slot] = append(w.ingest[slot], r)
			produced[kv.Source{Slot: slot, Offset: r.Offset}] = string(r.Value)
		})
	}
	return produced
}

// simFinalReads reads every key linearizably through the owner once it
// serves; the returned func says whether all were read.
func simFinalReads(w *world, h *kvmodel.History) func() bool {
	keys := append(append([]string{}, simKeys...), simCounters...)
	left := len(keys)
	for i, k := range keys {
		var try func()
		try = func() {
			o := w.owner
			call := w.now
			req := &core.Request{Op: core.OpGet, Key: []byte(k)}
			req.Handle = &simCall{done: func(r core.Reply) {
				if r.Err != nil {
					w.after(10*time.Millisecond, try)
					return
				}
				w.history(h, o, r.Handle.(*simCall).decided, true).Add(200+i, kvmodel.Input{Op: "get", Key: k}, call, kvmodel.Output{OK: r.Read.Found, Value: string(r.Read.Value.Data), Version: r.Read.Value.Version}, w.now)
				left--
			}}
			o.prefetch(req)
			o.step(req)
		}
		w.after(0, try)
	}
	return func() bool { return left == 0 }
}

// simCheck checks a finished run.
func simCheck(w *world, h *kvmodel.History, checks *simChecks, produced map[kv.Source]string) string {
	ops := h.Operations()
	if res := porcupine.CheckOperations(kvmodel.Model, ops); !res {
		msg := fmt.Sprintf("the history of %d operations is not linearizable", len(ops))
		if simTrace {
			msg += "\n" + explain(ops, w.start)
		}
		return msg
	}
	// The log, replayed: every key's final state, every value ever committed.
	replayed := map[string]kvmodel.State{}
	committed := map[string]bool{}
	applied := map[kv.Source]int{}
	for s := range int32(simSlots) {
		for _, p := range w.log.slots[s] {
			if p.Kind != kv.KindChange {
				continue
			}
			c := p.Change
			replayed[string(c.Key)] = kvmodel.State{Value: string(c.Value), Version: c.Version, Present: !c.Remove}
			committed[fmt.Sprintf("%s=%s/%d", c.Key, c.Value, c.Version)] = true
			if !c.Remove {
				committed[string(c.Value)] = true
			}
			if p.Ingest != nil {
				applied[*p.Ingest]++
			}
		}
	}
	for _, op := range ops {
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		if op.ClientId < 200 || in.Op != "get" {
			continue
		}
		want := replayed[in.Key]
		if want.Present != out.OK || (out.OK && (want.Value != out.Value || want.Version != out.Version)) {
			return fmt.Sprintf("key %s: the owner says %+v, a replay of the log says %+v", in.Key, out, want)
		}
	}
	for v := range checks.notApplied {
		if committed[v] {
			return fmt.Sprintf("a write of %q was answered \"not applied\", but the log holds it", v)
		}
	}
	for _, r := range checks.observed {
		if r.Found && !committed[fmt.Sprintf("%s/%d", r.Value.Data, r.Value.Version)] {
			return fmt.Sprintf("a read that skips the inbox saw %s at version %d, which never committed", r.Value.Data, r.Value.Version)
		}
	}
	if len(checks.keys) > 0 {
		return checks.keys[0]
	}
	dead := map[kv.Source]int{}
	for _, d := range w.log.deadLetters {
		dead[kv.Source{Slot: d.Record.Slot, Offset: d.Record.Offset}]++
	}
	for src := range produced {
		if n := applied[src] + dead[src]; n != 1 {
			return fmt.Sprintf("ingest record %d/%d was applied %d times and dead-lettered %d times, want once in all", src.Slot, src.Offset, applied[src], dead[src])
		}
	}
	return ""
}

func replySummary(r core.Reply) string {
	switch {
	case r.Err != nil:
		return "error: " + r.Err.Error()
	case len(r.Results) > 0:
		return fmt.Sprintf("v%d counter=%d", r.Results[0].Version, r.Counter)
	}
	return fmt.Sprintf("found=%v %q v%d", r.Read.Found, r.Read.Value.Data, r.Read.Value.Version)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
