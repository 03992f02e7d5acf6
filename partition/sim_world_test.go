package partition

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/sluicedb/sluice/internal/kvmodel"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
	"github.com/sluicedb/sluice/wal/local"
)

// The simulator's world: one partition's owners (core instances, each with
// its own store and a loop played by events) against a fake log with
// faults, a fake ingest topic, a registry, and a fake clock. Everything runs
// on one goroutine from one seed, so a run replays exactly.

const simSlots = 4

// event is something that happens at a time; seq orders events of one time.
type event struct {
	at  time.Time
	seq uint64
	fn  func()
}

type events []*event

func (q events) Len() int { return len(q) }
func (q events) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q events) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *events) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *events) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simFaults are the probabilities of the faults a run injects.
type simFaults struct {
	appendFail    float64 // an append fails before its commit (not committed)
	appendUnknown float64 // a commit's answer is lost: it may or may not have committed
	applyFail     float64 // a store write fails (a full disk)
	move          float64 // per client op: the partition gets a new owner
	pause         float64 // per client op: an owner pauses (a GC pause, SIGSTOP)
	closeOld      float64 // a deposed owner is closed gracefully (the manager's release)
	crash         float64 // per client op: the owner's process is killed and restarts on its disk
	syncFail      float64 // --wal disk: a synced write fails (written or not: unknown)
	readFail      float64 // --wal disk, --store cached: a durable store read fails
	bucketFail    float64 // --wal none: a snapshot bucket call fails
	bucketLate    float64 // --wal none: a manifest's PUT lands late (its process paused before it)
}

// simTrace prints what happens in a run (SLUICE_SEED=... go test -v).
var simTrace bool

// simStages drop every write of a key under tmp/.
var simStages = func() []pipeline.Stage {
	stages, err := pipeline.NewRegistry().ParseConfig([]byte("pipeline:\n  - filter: {prefixes: [\"tmp/\"], action: drop}\n"))
	if err != nil {
		panic(err)
	}
	return stages
}()

type world struct {
	rng    *rand.Rand
	start  time.Time
	now    time.Time
	seq    uint64
	queue  events
	faults simFaults
	lease  time.Duration
	// mode is the storage mode the seed chose (simModes): the fake Kafka
	// log, wal/local's Disk over a store with faults (sim_disk_test.go),
	// either under store.Cached (sim_cached_test.go).
	mode string
	// cacheRoot holds the write-through caches of a cached mode.
	cacheRoot string

	log      *simLog
	ingest   map[int32][]kv.IngestRecord // the ingest topic
	epoch    uint64                      // the registry's epoch of the partition
	owner    *inst                       // the registry's owner
	insts    []*inst
	clients  []*simClient
	injected map[string]int
	steps    int
	// bkt is the snapshot bucket and the eras of the modes that hand off
	// through it, --wal none and disk (sim_handoff_test.go).
	bkt *bucketWorld
	// readCache is the node's read cache the instances share (each its own
	// generations, as a node's partitions): large enough never to evict
	// (otter's eviction is not the seed's), with a small value bound so
	// that some entries hold only a version.
	readCache *ReadCache
	// cacheIncoherent: the read cache disagreed with the store (readCommitted).
	cacheIncoherent []string
}

func newWorld(seed uint64, f simFaults, mode string) *world {
	w := &world{
		mode:     mode,
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)),
		now:      time.UnixMilli(1_700_000_000_000),
		faults:   f,
		lease:    300 * time.Millisecond,
		log:      newSimLog(),
		ingest:   map[int32][]kv.IngestRecord{},
		injected: map[string]int{},
	}
	w.start = w.now
	w.readCache = NewReadCache(64 << 20)
	w.readCache.maxValue = 4 + w.rng.IntN(12)
	if mode == "none" || strings.HasPrefix(mode, "disk") {
		w.openBucket()
	}
	if strings.HasSuffix(mode, "+cached") {
		dir, err := os.MkdirTemp(simCacheRoot(), "sluice-sim-cache-")
		if err != nil {
			panic(err)
		}
		w.cacheRoot = dir
	}
	w.move()
	return w
}

// trace prints one line of a run when tracing.
func (w *world) trace(format string, args ...any) {
	if simTrace {
		fmt.Printf("%10s  %s\n", w.now.Sub(w.start), fmt.Sprintf(format, args...))
	}
}

func (w *world) after(d time.Duration, fn func()) {
	w.seq++
	heap.Push(&w.queue, &event{at: w.now.Add(d), seq: w.seq, fn: fn})
}

// run processes events until the queue is empty or until.
func (w *world) run(until time.Time) {
	for len(w.queue) > 0 && !w.queue[0].at.After(until) {
		e := heap.Pop(&w.queue).(*event)
		if e.at.After(w.now) {
			w.now = e.at
		}
		w.steps++
		e.fn()
	}
	if w.now.Before(until) {
		w.now = until
	}
}

// dur is a random duration in [lo, hi).
func (w *world) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)))
}

func (w *world) chance(p float64) bool { return p > 0 && w.rng.Float64() < p }

// move gives the partition to a new owner: a new epoch in the registry, a
// new instance with an empty store that restores from the log. The old one
// runs on until it learns it was deposed (or is closed).
func (w *world) move() {
	w.epoch++
	in := newInst(w, len(w.insts), w.epoch, nil, "")
	if old := w.owner; old != nil {
		w.injected["move"]++
		if w.chance(w.faults.closeOld) {
			w.after(w.dur(0, 50*time.Millisecond), func() { old.do(old.d.Close) })
		}
	}
	w.owner = in
	w.insts = append(w.insts, in)
	w.trace("move: owner i%d at epoch %d", in.id, in.epoch)
	in.d.Start()
}

// crash kills the owner's process (kill -9) and starts it again on the same
// store at the same epoch. It holds its directory's lock, so no other
// process of it is alive; it skips the lease wait only if its store has
// served this epoch (node's partition.json "served"): one killed before it
// ever served had not waited the lease out, and a deposed owner may still
// answer within it.
func (w *world) crash() { w.restart("crash") }

// restart is crash, counted as why.
func (w *world) restart(why string) {
	old := w.owner
	w.injected[why]++
	old.killed = true
	old.d.Kill()
	old.crashCache()
	st := old.st
	if w.mode == "none" {
		st = nil // the process's memory is gone: its store with it
	}
	in := newInst(w, len(w.insts), old.epoch, st, old.cacheDir)
	in.restarted = old.served || old.restarted
	if in.disk != nil {
		in.era, in.seeded = old.era, old.seeded // its disk, and its era, survive
	}
	w.owner = in
	w.insts = append(w.insts, in)
	w.trace("crash: i%d restarts as i%d", old.id, in.id)
	in.d.Start()
}

// simLog is the fake write-ahead log: committed records per slot. Fencing is
// by producer epoch over all the partition's slots, as slot-based fencing
// makes it: a fence takes effect some time after it is asked for, and the
// old producer may commit until then.
type simLog struct {
	slots       map[int32][]wal.Positioned
	deadLetters []wal.DeadLetter
	forwards    []wal.Forward
	fenced      uint64 // producers below this epoch cannot commit
	producers   uint64 // producer epochs given out
}

func newSimLog() *simLog { return &simLog{slots: map[int32][]wal.Positioned{}} }

// commit appends g atomically and returns its records' offsets.
func (l *simLog) commit(g *core.Group) []int64 {
	offs := make([]int64, len(g.Records))
	for i, r := range g.Records {
		offs[i] = int64(len(l.slots[r.Slot]))
		l.slots[r.Slot] = append(l.slots[r.Slot], wal.Positioned{Record: r, Offset: offs[i]})
	}
	l.deadLetters = append(l.deadLetters, g.DeadLetters...)
	l.forwards = append(l.forwards, g.Forwards...)
	return offs
}

// replay is the log's committed records from the given next offsets.
func (l *simLog) replay(from map[int32]int64) wal.Replayed {
	b := wal.Replayed{Reached: map[int32]int64{}}
	for slot := range int32(simSlots) {
		recs := l.slots[slot]
		if off := from[slot]; off < int64(len(recs)) {
			b.Records = append(b.Records, recs[off:]...)
			b.Reached[slot] = int64(len(recs))
		}
	}
	return b
}

// inst is one owner of the partition: a core and the loop around it, played
// by events.
type inst struct {
	w        *world
	id       int
	epoch    uint64
	core     *core.Core
	d        *core.Driver // carries out the core's Readys with the effects below
	st       *store.Memory
	vers     *values
	producer uint64    // the producer epoch its fence obtained; 0 before
	applying bool      // a store write is scheduled
	paused   time.Time // events for it wait until then
	gen      uint64    // the ingest consumer's generation; 0 when stopped
	restores int
	// restarted: a process restarted on its own disk at the same epoch
	// whose store served it (it may skip the lease wait).
	restarted bool
	// served: the core has served (the node then records it on disk).
	served bool
	// killed: the process is gone (kill -9); it writes nothing to the store
	// it shares with the process restarted on it.
	killed   bool
	deferred []func() // inputs waiting, in order, while paused
	// disk is the --wal disk log over st, app its appender (sim_disk_test.go).
	disk *local.Disk
	app  wal.Appender
	// cached is the write-through cache over the durable store in a cached
	// mode, in cacheDir (sim_cached_test.go).
	cached   *store.Cached
	cacheDir string
	// none is the --wal none log over st; seeded: its store was restored
	// from the bucket; era: its part of the history (-1 before it
	// restored); finalState and finalDone: its state at its final snapshot,
	// and whether that reached the bucket (sim_none_test.go).
	none       *local.None
	seeded     bool
	era        int
	finalState map[string]kvmodel.State
	finalDone  bool
	// finishedAt is when its final snapshot was recorded in the owner
	// record; seedStart when its last seed began (sim_handoff_test.go).
	finishedAt, seedStart time.Time
	// finalRefusedAt is when its final snapshot was refused for a newer
	// owner's record, of epoch finalRefusedBy.
	finalRefusedAt time.Time
	finalRefusedBy uint64
	// decidedAt, if set, is when the replies being released were decided
	// (appendNone).
	decidedAt time.Time
	// published is how far the store reaches as the loop's view publishes
	// it (after each store write, and at a restore): SESSION reads wait
	// for it.
	published map[int32]int64
}

// newInst starts an owner on st, or on an empty store if st is nil; in a
// cached mode its cache is in cacheDir (a new one if "").
func newInst(w *world, id int, epoch uint64, st *store.Memory, cacheDir string) *inst {
	if st == nil {
		st = store.NewMemoryClock(func() time.Time { return w.now })
	}
	in := &inst{w: w, id: id, epoch: epoch, st: st, vers: newValues(w.readCache)}
	if w.mode == "disk" || w.mode == "disk+cached" {
		in.disk = local.NewDisk(simDurable{in})
	}
	if w.mode == "none" {
		in.none = local.NewNone(st)
	}
	if w.bkt != nil {
		in.era = -1
	}
	if w.mode == "kafka+cached" || w.mode == "disk+cached" {
		in.openCache(cacheDir)
	}
	in.core = core.New(core.Config{ID: 1, Range: keyspace.Range{From: 0, To: simSlots}, Slots: simSlots, Epoch: epoch, Lease: w.lease, WindowSize: 64, Stages: simStages})
	// Held: store writes happen late relative to other events (nextApply).
	in.d = core.NewDriver(in.core, simStore{in}, in.vers, in, true)
	return in
}

// do runs fn, an input to the driver, as the instance's loop would: after
// any pause, in the order the instance received its inputs.
func (in *inst) do(fn func()) {
	in.deferred = append(in.deferred, fn)
	if len(in.deferred) == 1 {
		in.drain()
	}
}

// drain runs the deferred inputs unless the instance is paused; then it
// tries again when the pause ends.
func (in *inst) drain() {
	w := in.w
	if w.now.Before(in.paused) {
		w.seq++
		heap.Push(&w.queue, &event{at: in.paused, seq: w.seq, fn: in.drain})
		return
	}
	// A stopped core still answers (ErrStopped), as a stopped partition's
	// callers learn from its end.
	for len(in.deferred) > 0 {
		fn := in.deferred[0]
		fn()
		in.deferred = in.deferred[1:]
	}
}

// The instance's effects (core.Effects): the loop's, played by events with
// delays.

func (in *inst) Now() time.Time { return in.w.now }
func (in *inst) StopIngest()    { in.gen = 0 }

func (in *inst) Reply(r core.Reply) {
	r.Handle.(*simCall).decided = in.w.now
	if !in.decidedAt.IsZero() {
		r.Handle.(*simCall).decided = in.decidedAt
	}
	in.w.after(in.w.dur(0, 2*time.Millisecond), func() { r.Handle.(*simCall).done(r) })
}

func (in *inst) Append(g *core.Group) { in.append(g) }
func (in *inst) Queued(*core.Group)   {}

// Stored publishes how far the store reaches, as the loop's view does:
// SESSION reads wait for it.
func (in *inst) Stored(_ *core.Group, b kv.Write, err error) {
	if err == nil {
		in.publish(b.Offsets)
	}
}

// publish records that the store holds the log up to offsets.
func (in *inst) publish(offsets map[int32]int64) {
	if in.published == nil {
		in.published = map[int32]int64{}
	}
	for s, o := range offsets {
		in.published[s] = max(in.published[s], o)
	}
}
func (in *inst) Restore() { in.restore() }

// Stop: in --wal none a stopped partition takes its final snapshot; in
// --wal disk one that moved away (node's handOff: a close with the
// partition still its own, a restart, keeps the data on its disk).
func (in *inst) Stop() {
	if in.none != nil || (in.disk != nil && in.w.epoch != in.epoch) {
		in.finalBackup()
	}
}

func (in *inst) StartIngest(s *core.IngestStart) {
	in.gen = s.Gen
	in.consume(s.Gen, s.From)
}

func (in *inst) WakeAt(t time.Time) {
	in.w.after(t.Sub(in.w.now), func() { in.do(in.d.Tick) })
}

func (in *inst) Carried() {
	if in.core.State() == core.Serving {
		in.served = true
		if in.w.bkt != nil && in.era >= 0 && in.w.bkt.eras[in.era].served.IsZero() {
			in.w.bkt.eras[in.era].served = in.w.now
		}
	}
	in.nextApply()
}

// simStore is the instance's store as its driver sees it, with faults: a
// store write fails now and then (a full disk); a killed process writes
// nothing.
type simStore struct{ in *inst }

func (s simStore) Apply(b kv.Write) error {
	w := s.in.w
	switch {
	case s.in.killed:
		return fmt.Errorf("the process was killed")
	case s.in.cached != nil && s.in.disk == nil:
		// kafka+cached: the durable store under the cache fails (simDurable).
	case w.chance(w.faults.applyFail):
		w.injected["apply-fail"]++
		return fmt.Errorf("disk full")
	}
	return s.in.durable().Apply(b)
}

func (s simStore) GetMany(keys [][]byte) ([]kv.Read, error) { return s.in.durable().GetMany(keys) }

// durable is the store the driver writes: the cache over the durable store
// in a cached mode; in --wal disk the Disk's, which skips what the appender
// wrote.
func (in *inst) durable() store.Store {
	if in.cached != nil {
		return in.cached
	}
	if in.disk != nil {
		return in.disk.Store()
	}
	return in.st
}

// append plays the flusher and the log: the commit lands after a delay,
// unless a fault or a fence stops it; the answer comes back after another.
func (in *inst) append(g *core.Group) {
	w := in.w
	if in.disk != nil {
		in.appendDisk(g)
		return
	}
	if in.none != nil {
		in.appendNone(g)
		return
	}
	producer := in.producer
	slow := w.dur(time.Millisecond, 8*time.Millisecond)
	if w.chance(0.05) {
		slow = w.dur(50*time.Millisecond, 1500*time.Millisecond) // a slow append
	}
	w.after(slow, func() {
		var offs []int64
		var err error
		defer func() { w.trace("i%d g%d %s: %v", in.id, g.N, groupSummary(g), err) }()
		switch {
		case w.chance(w.faults.appendFail):
			w.injected["append-fail"]++
			err = fmt.Errorf("%w: produce failed", wal.ErrNotCommitted)
		case producer < w.log.fenced:
			err = fmt.Errorf("%w: PRODUCER_FENCED", wal.ErrNotCommitted)
		case w.chance(w.faults.appendUnknown):
			w.injected["append-unknown"]++
			if w.chance(0.5) {
				w.log.commit(g)
			}
			err = fmt.Errorf("%w: the broker went silent", wal.ErrCommitUnknown)
		default:
			offs = w.log.commit(g)
		}
		w.after(w.dur(0, 2*time.Millisecond), func() { in.do(func() { in.d.Appended(g.N, offs, err) }) })
	})
}

// nextApply has the driver write its oldest queued group to the store
// after a delay: store writes finish late relative to other events, in
// order (the driver fails the groups behind a failed one).
func (in *inst) nextApply() {
	w := in.w
	if in.applying || in.d.Pending() == 0 {
		return
	}
	in.applying = true
	w.after(w.dur(0, 5*time.Millisecond), func() {
		in.do(func() {
			in.applying = false
			if in.killed {
				return
			}
			in.d.ApplyNext()
		})
	})
}

// restore plays restore.go: the registry says whether this instance still
// owns the partition; fencing takes effect some time after it is asked for
// and returns after that; then the log replays into the store.
func (in *inst) restore() {
	in.restores++
	if in.disk != nil {
		in.restoreDisk()
		return
	}
	if in.none != nil {
		in.restoreNone()
		return
	}
	in.restoreKafka()
}

// restoreKafka is one try of the Kafka restore; a failed one (not deposed)
// is tried again, as the loop's retry.Forever does.
func (in *inst) restoreKafka() {
	w := in.w
	w.after(w.dur(0, 5*time.Millisecond), func() {
		if in.killed {
			return // gone before it asked the registry
		}
		if w.epoch != in.epoch {
			w.trace("i%d restore: deposed", in.id)
			in.do(func() {
				in.d.Restored(core.Restore{Err: fmt.Errorf("%w: the registry has epoch %d", ErrDeposed, w.epoch)})
			})
			return
		}
		// InitProducerID: it bumps the producer epoch when it takes effect,
		// fencing every earlier producer; it returns some time after.
		var producer uint64
		effect := w.dur(0, 300*time.Millisecond)
		w.after(effect, func() {
			w.log.producers++
			producer = w.log.producers
			w.log.fenced = producer
			w.trace("i%d fence takes effect: producer %d", in.id, producer)
		})
		// A fence asked for takes effect even if the process is killed
		// meanwhile: the request is at the broker.
		w.after(effect+w.dur(0, 50*time.Millisecond), func() {
			if in.killed {
				return // gone: nothing replays into the store
			}
			fencedAt := w.now
			in.producer = producer
			if w.epoch != in.epoch { // ownership again, after its own fence
				w.trace("i%d restore: deposed after its fence", in.id)
				in.do(func() {
					in.d.Restored(core.Restore{Err: fmt.Errorf("%w: the registry has epoch %d", ErrDeposed, w.epoch)})
				})
				return
			}
			offs, _ := in.st.Offsets()
			from := map[int32]int64{}
			for s := range int32(simSlots) {
				from[s] = offs[s]
			}
			r := core.Restore{FencedAt: fencedAt, SkipLeaseWait: in.restores == 1 && (in.epoch == 1 || in.restarted)}
			var err error
			if r.Clock, err = in.st.Clock(); err != nil {
				panic(err)
			}
			if r.Ingest, err = in.st.IngestOffsets(); err != nil {
				panic(err)
			}
			for s := range int32(simSlots) {
				r.Ingest[s] = max(r.Ingest[s], 0)
			}
			if err := in.resyncCache(); err != nil {
				panic(err)
			}
			b := w.log.replay(from)
			r.Err = applyBatch(in.durable(), b, in.epoch, &r.Clock, r.Ingest)
			w.trace("i%d restored: fence returned, %d records replayed, err %v", in.id, len(b.Records), r.Err)
			if r.Err != nil && !errors.Is(r.Err, ErrDeposed) {
				w.after(w.dur(10*time.Millisecond, 50*time.Millisecond), in.restoreKafka)
				return
			}
			if r.Err == nil {
				in.publish(b.Reached)
				in.publish(from)
			}
			in.do(func() { in.d.Restored(r) })
		})
	})
}

// consume plays the ingest consumer of generation gen: it delivers the
// records of the ingest topic from its positions, in small batches, while it
// is current.
func (in *inst) consume(gen uint64, from map[int32]int64) {
	w := in.w
	pos := map[int32]int64{}
	for s, o := range from {
		pos[s] = o
	}
	var poll func()
	poll = func() {
		if in.gen != gen || in.core.State() == core.Stopped {
			return
		}
		var recs []kv.IngestRecord
		for s := range int32(simSlots) {
			for off := pos[s]; off < int64(len(w.ingest[s])) && len(recs) < 4; off++ {
				recs = append(recs, w.ingest[s][off])
				pos[s] = off + 1
			}
		}
		if len(recs) > 0 {
			w.trace("i%d ingest gen %d delivers %v", in.id, gen, ingestSummary(recs))
			req := &core.Request{Op: core.OpIngest, Ingest: recs, Gen: gen}
			in.step(req)
		}
		w.after(w.dur(time.Millisecond, 10*time.Millisecond), poll)
	}
	w.after(0, poll)
}

// step hands a request to the driver, as the loop does from its inbox.
func (in *inst) step(req *core.Request) {
	in.do(func() { in.d.Step(req) })
}

// prefetch plays the caller's read before it queues the request.
func (in *inst) prefetch(req *core.Request) {
	seen := in.core.Applies()
	keys := make([][]byte, req.NumKeys())
	for i := range keys {
		keys[i] = req.KeyAt(i)
	}
	reads, err := in.durable().GetMany(keys)
	if err != nil {
		return // as partition.prefetch: the driver reads, and handles the error
	}
	req.Reads = make([]core.Read, len(keys))
	for i, r := range reads {
		req.Reads[i] = core.Read{Read: r, OK: true, Seen: seen}
	}
}

func groupSummary(g *core.Group) string {
	var parts []string
	for _, r := range g.Records {
		switch r.Kind {
		case kv.KindChange:
			parts = append(parts, fmt.Sprintf("%s=%s/v%d", r.Change.Key, r.Change.Value, r.Change.Version))
		default:
			if r.Ingest != nil {
				parts = append(parts, r.Kind.String()+fmt.Sprint(*r.Ingest))
			} else {
				parts = append(parts, r.Kind.String())
			}
		}
	}
	for _, d := range g.DeadLetters {
		parts = append(parts, fmt.Sprintf("dlq%d/%d", d.Record.Slot, d.Record.Offset))
	}
	return strings.Join(parts, " ")
}

func ingestSummary(recs []kv.IngestRecord) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%d/%d:%s=%s", r.Slot, r.Offset, r.Key, r.Value))
	}
	return strings.Join(parts, " ")
}
