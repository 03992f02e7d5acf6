package partition

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/rs/zerolog"
	"gocloud.dev/blob"

	"github.com/sluicedb/sluice/internal/kvmodel"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/snapshot"
)

// Hand-offs through the snapshot bucket under the simulator, for the modes
// with no log to replay (--wal none: sim_none_test.go; --wal disk, with or
// without the cache: sim_disk_test.go). The bucket is the real snapshot
// code (snapshot.Write, Bucket.Upload, Claim, Finish) over gocloud's memblob
// with faults (sim_bucket_test.go): calls that fail, and a paused owner's
// manifest that lands late. A new owner with an empty store runs node's
// seed, snapshot.Seed, step by step in simulated time (seed): it waits for
// the previous owner's final snapshot up to simHandoff, restores the newest
// snapshot (or carries removed partitions' slots over), then claims the
// partition in the bucket (Bucket.Claim) with its new appender. An owner
// that stops after a move (a release, as node's close hook) takes a final
// snapshot and marks the owner record final (finalBackup); an owner's
// appends hold only while the registry names it (the ownership lease).
//
// A hand-off that timed out (the old owner cut off or paused, never
// closed) loses what the old owner acknowledged since its newest snapshot
// in the bucket: that is the modes' promise (README, "What each mode
// promises"). So the history is checked in eras, one per owner incarnation
// that seeded its store from the bucket, each from the state it restored,
// and the promises beside it:
//
//   - a seed loads exactly the newest snapshot that reached the bucket (of
//     the newest epoch, then the newest taken): "a deposed owner's late
//     backup never wins a restore over the new owner's"; in --wal none "a
//     crash loses the writes since the newest backup, exactly";
//   - a planned move through a final snapshot loses nothing: when the
//     previous owner's final snapshot reached the bucket within the new
//     owner's wait for it, the new owner starts from exactly the state the
//     old one closed with;
//   - no owner of an older era answers a request after a newer one served
//     (the lease).
//
// A --wal disk owner killed and restarted on its disk stays in its era: its
// store survives, and the era's linearizable history holds it to "a kill -9
// loses nothing acknowledged".

// simHandoff is the simulated node's HandoffTimeout.
const simHandoff = 600 * time.Millisecond

// simBackup is a snapshot an owner took, as the world knows it.
type simBackup struct {
	epoch   uint64
	seq     int // order taken
	key     string
	state   map[string]kvmodel.State
	landed  bool
	final   bool
	takenBy *inst
}

// simEra is one owner incarnation's part of the history.
type simEra struct {
	init   map[string]kvmodel.State // the state it restored
	served time.Time                // when it first served; zero: never
	h      *kvmodel.History
}

// bucketWorld is the world's part for the modes that hand off through the
// bucket: the bucket, the backups taken, the eras and the promises found
// broken.
type bucketWorld struct {
	w       *world
	bucket  *snapshot.Bucket
	blob    *simBlob
	backups map[string]*simBackup // by manifest key
	taken   int
	work    string
	eras    []*simEra
	seeds   []simSeed
	// firstClaim is the process that claimed each epoch first, with when
	// the seed before that claim began (a later seed of the same process,
	// after a restart, moves its seedStart on).
	firstClaim map[uint64]simClaim
	// claimed is the highest epoch that claimed the partition in the bucket.
	claimed uint64
	// lossy: a seed may have gone on without an earlier owner's final
	// snapshot; whole: the mode loses nothing else (--wal disk: a kill -9
	// restarts on the same disk), so the eras of a run that was not lossy
	// make one history.
	lossy, whole bool
	problems     []string
}

func (w *world) openBucket() {
	dir, err := os.MkdirTemp(simCacheRoot(), "sluice-sim-bucket-")
	if err != nil {
		panic(err)
	}
	n := &bucketWorld{w: w, backups: map[string]*simBackup{}, work: dir, whole: w.mode != "none", firstClaim: map[uint64]simClaim{}}
	var bb *blob.Bucket
	n.blob, bb = newSimBucket(w, func(key string, _ *inst) {
		if b := n.backups[key]; b != nil {
			b.landed = true
		}
	}, func(key string) {
		if b := n.backups[key]; b != nil {
			b.landed = false
		}
	})
	n.bucket = snapshot.NewBucket(bb, "sim", snapshot.BucketOptions{Keep: 3})
	w.bkt = n
}

func (w *world) closeBucket() {
	if w.bkt == nil {
		return
	}
	w.bkt.bucket.Close()
	os.RemoveAll(w.bkt.work)
}

// stateOf reads every key of the run from in's store.
func stateOf(in *inst) map[string]kvmodel.State {
	out := map[string]kvmodel.State{}
	for _, k := range append(append([]string{}, simKeys...), simCounters...) {
		r, err := in.st.Get([]byte(k))
		if err != nil {
			panic(err)
		}
		out[k] = kvmodel.State{Value: string(r.Value.Data), Version: r.Value.Version, Present: r.Found}
	}
	return out
}

// bucketCall runs a bucket call as in's (the late upload fault needs
// to know whose process paused).
func (in *inst) bucketCall(fn func(b *snapshot.Bucket) error) error {
	n := in.w.bkt
	n.blob.writer = in
	defer func() { n.blob.writer = nil }()
	return fn(n.bucket)
}

var simSpec = struct {
	rng  keyspace.Range
	part uint32
}{keyspace.Range{From: 0, To: simSlots}, 1}

// simWant is what the partition's seed wants of a snapshot.
var simWant = snapshot.Want{Partition: simSpec.part, Range: simSpec.rng, Slots: simSlots}

// backup takes a snapshot of in's store and uploads it (node.backup).
func (in *inst) backup(final bool) (snapshot.Manifest, error) {
	n := in.w.bkt
	parent := filepath.Join(n.work, "backups", "i"+strconv.Itoa(in.id))
	walName := "none"
	if in.disk != nil {
		walName = "disk"
	}
	m, dir, err := snapshot.Write(context.Background(), in.st, parent, snapshot.Manifest{
		Cluster: "sim", Partition: simSpec.part, Range: simSpec.rng, Slots: simSlots, Epoch: in.epoch, WAL: walName, Final: final,
	})
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	n.taken++
	key := "sim/p1/" + m.Name() + "/" + snapshot.ManifestFile
	n.backups[key] = &simBackup{epoch: in.epoch, seq: n.taken, key: key, state: stateOf(in), final: final, takenBy: in}
	err = in.bucketCall(func(b *snapshot.Bucket) error { return b.Upload(context.Background(), dir, m) })
	in.w.trace("i%d backup %s (final %v): %v", in.id, m.Name(), final, err)
	return m, err
}

// finalBackup is node.finalBackup: after the partition stopped, a final
// snapshot and the owner record marked final.
func (in *inst) finalBackup() {
	w := in.w
	if in.app == nil {
		// Its restore never got as far as the appender: its store was never
		// whole, and a final snapshot of it would hand over an empty
		// partition (node's closeHook.restored).
		return
	}
	w.after(w.dur(0, 20*time.Millisecond), func() {
		if in.killed {
			return
		}
		in.finalState = stateOf(in)
		m, err := in.backup(true)
		refused := func(err error) {
			if errors.Is(err, snapshot.ErrNewerOwner) && in.finalRefusedAt.IsZero() {
				in.finalRefusedAt, in.finalRefusedBy = w.now, w.bkt.claimed
			}
		}
		refused(err)
		finish := func() {
			err = in.bucketCall(func(b *snapshot.Bucket) error { return b.Finish(context.Background(), m, "i"+strconv.Itoa(in.id)) })
			if err == nil {
				in.finalDone, in.finishedAt = true, w.now
			}
			refused(err)
			w.trace("i%d final snapshot: %v", in.id, err)
		}
		switch {
		case errors.Is(err, errSimLate):
			// Paused before the manifest's PUT: the rest, once it landed.
			w.after(simLateMax, func() {
				if !in.killed {
					finish()
				}
			})
		case err == nil:
			finish()
		default:
			w.trace("i%d final snapshot: %v", in.id, err)
		}
	})
}

// seed plays node's seedHandoff: snapshot.Seed's steps into in's empty
// store, snapshot.SeedPoll apart in simulated time. A failing bucket fails
// the seed: retry then runs (the restore is tried again, with a new seed).
// Once the seed is done, it opens in's era and then runs.
func (in *inst) seed(then func(handedOver bool), retry func()) {
	w := in.w
	work := filepath.Join(w.bkt.work, "restore", "i"+strconv.Itoa(in.id))
	s := &snapshot.Seed{Bucket: w.bkt.bucket, Want: simWant, Epoch: in.epoch, Timeout: simHandoff, Work: work, Log: zerolog.Nop()}
	in.seedStart = w.now
	var step func()
	step = func() {
		if in.killed {
			return
		}
		var done, handedOver bool
		err := in.bucketCall(func(b *snapshot.Bucket) (err error) {
			done, handedOver, err = s.Step(context.Background(), w.now, in.st)
			return err
		})
		switch {
		case err != nil:
			os.RemoveAll(work)
			w.trace("i%d seed: %v", in.id, err)
			w.after(w.dur(10*time.Millisecond, 50*time.Millisecond), retry)
		case !done:
			w.after(snapshot.SeedPoll, step)
		default:
			os.RemoveAll(work)
			in.seeded = true
			w.bkt.checkSeed(in, handedOver)
			then(handedOver)
		}
	}
	step()
}

// claim is node's announce with a new appender: the owner record names in
// at its epoch (Bucket.Claim). A newer owner's record deposes in.
func (in *inst) claim() error {
	err := in.bucketCall(func(b *snapshot.Bucket) error {
		return b.Claim(context.Background(), simSpec.part, simSpec.rng, in.epoch, "i"+strconv.Itoa(in.id))
	})
	in.w.trace("i%d claims the partition at epoch %d: %v", in.id, in.epoch, err)
	if n := in.w.bkt; err == nil {
		n.claimed = max(n.claimed, in.epoch)
		if _, ok := n.firstClaim[in.epoch]; !ok {
			n.firstClaim[in.epoch] = simClaim{in: in, seedStart: in.seedStart}
		}
	}
	return err
}

// deposed reports a restore that found a newer owner.
func (in *inst) deposed(err error) {
	in.do(func() { in.d.Restored(core.Restore{Err: fmt.Errorf("%w: %w", ErrDeposed, err)}) })
}

// checkSeed holds a seed to the promises: it loaded exactly the newest
// backup in the bucket (the newest epoch, then the newest taken); when the
// previous owner's final snapshot reached the bucket within the wait for
// it, exactly the old owner's state at its close. It opens in's era from
// the state it loaded.
func (n *bucketWorld) checkSeed(in *inst, handedOver bool) {
	got := stateOf(in)
	var want *simBackup
	for _, b := range n.backups {
		if b.landed && (want == nil || b.epoch > want.epoch || (b.epoch == want.epoch && b.seq > want.seq)) {
			want = b
		}
	}
	switch {
	case want != nil && !maps.Equal(got, want.state):
		n.problems = append(n.problems, fmt.Sprintf("i%d (epoch %d) restored %v; the newest backup in the bucket is %s (epoch %d, taken by i%d): %v", in.id, in.epoch, got, want.key, want.epoch, want.takenBy.id, want.state))
	case want == nil && !allAbsent(got):
		n.problems = append(n.problems, fmt.Sprintf("i%d restored %v from a bucket that holds no backup", in.id, got))
	}
	earlierServed := false
	for _, o := range in.w.insts {
		earlierServed = earlierServed || (o.epoch < in.epoch && o.served)
	}
	seed := simSeed{in: in, got: got, handedOver: handedOver, claimed: n.claimed, start: in.seedStart, earlierServed: earlierServed}
	n.seeds = append(n.seeds, seed)
	if earlierServed && !n.tookOver(seed) {
		n.lossy = true // it may have gone on without an owner's last writes (so far)
	}
	in.era = len(n.eras)
	n.eras = append(n.eras, &simEra{init: got, h: &kvmodel.History{}})
}

// simClaim is an epoch's first claim: its process, and when the seed
// before it began.
type simClaim struct {
	in        *inst
	seedStart time.Time
}

// simSeed is a seed as checkSeed found it.
type simSeed struct {
	in            *inst
	got           map[string]kvmodel.State
	handedOver    bool
	claimed       uint64 // the highest epoch claimed when it ended
	start         time.Time
	earlierServed bool
}

// tookOver says whether s took the partition over from the previous
// owner's final snapshot as far as the world knows now: the seed said so
// (handed over), or that snapshot reached the bucket within the seed's
// wait for it.
func (n *bucketWorld) tookOver(s simSeed) bool {
	prev := n.previous(s.in)
	return prev != nil && prev.finalDone && (s.handedOver || !prev.finishedAt.After(s.start.Add(simHandoff)))
}

// checkHandoffs holds every seed, at the end of the run, to "a planned move
// through a final snapshot loses nothing": when the previous owner's final
// snapshot reached the bucket within the new owner's wait for it (its
// Finish may come after the seed that should have waited for it), the new
// owner restored exactly the state the old one closed with. It says
// whether some seed may have gone on without an owner's last writes.
func (n *bucketWorld) checkHandoffs() (lossy bool) {
	// A final snapshot refused because the next owner had claimed the
	// partition before its wait for it ended: that owner went on without
	// it. (It claims only after its seed, which goes on while the record
	// names an unfinished owner only once the wait is over.)
	for _, o := range n.insts() {
		claim, ok := n.firstClaim[o.finalRefusedBy]
		next := claim.in
		if o.finalRefusedAt.IsZero() || !ok || next.epoch != o.epoch+1 || o.finalRefusedAt.After(claim.seedStart.Add(simHandoff)) {
			continue
		}
		n.problems = append(n.problems, fmt.Sprintf("i%d's final snapshot (epoch %d) was refused at %s: i%d had claimed the partition at epoch %d within its wait for that snapshot (its seed began at %s, waits %s)",
			o.id, o.epoch, o.finalRefusedAt.Sub(o.w.start), next.id, next.epoch, claim.seedStart.Sub(o.w.start), simHandoff))
	}
	for _, s := range n.seeds {
		if !n.tookOver(s) {
			lossy = lossy || s.earlierServed
			continue
		}
		prev := n.previous(s.in)
		if s.claimed < s.in.epoch && !maps.Equal(s.got, prev.finalState) {
			n.problems = append(n.problems, fmt.Sprintf("i%d (epoch %d) took the partition over from i%d, whose final snapshot reached the bucket at %s (i%d's seed began at %s, waits %s; handed over %v), and restored %v; i%d closed with %v",
				s.in.id, s.in.epoch, prev.id, prev.finishedAt.Sub(s.in.w.start), s.in.id, s.start.Sub(s.in.w.start), simHandoff, s.handedOver, s.got, prev.id, prev.finalState))
		}
	}
	return lossy
}

// insts are the world's processes.
func (n *bucketWorld) insts() []*inst { return n.w.insts }

// allAbsent: a snapshot of a store that holds no key.
func allAbsent(st map[string]kvmodel.State) bool {
	for _, s := range st {
		if s.Present || s.Version != 0 {
			return false
		}
	}
	return true
}

// previous is the newest process of the owner of the epoch before in's.
func (n *bucketWorld) previous(in *inst) *inst {
	var prev *inst
	for _, o := range in.w.insts {
		if o.epoch+1 == in.epoch {
			prev = o
		}
	}
	return prev
}

// history is the history an answer of target goes into: its era's.
func (w *world) history(h *kvmodel.History, target *inst, decided time.Time, ok bool) *kvmodel.History {
	if w.bkt == nil {
		return h
	}
	if target.era < 0 {
		panic(fmt.Sprintf("i%d answered before it restored", target.id))
	}
	e := w.bkt.eras[target.era]
	if ok {
		for i, later := range w.bkt.eras[target.era+1:] {
			if !later.served.IsZero() && decided.After(later.served) {
				w.bkt.problems = append(w.bkt.problems, fmt.Sprintf("i%d (era %d) answered at %s, after the owner of era %d served from %s", target.id, target.era, decided.Sub(w.start), target.era+1+i, later.served.Sub(w.start)))
			}
		}
	}
	return e.h
}

// check checks each era's history from the state it restored, and the
// promises checkSeed and history recorded.
func (n *bucketWorld) check() string {
	lossy := n.checkHandoffs()
	if len(n.problems) > 0 {
		return n.problems[0]
	}
	if n.whole && !lossy {
		// Every seed took over the state its previous owner closed with,
		// and a kill -9 lost nothing: one history from the empty store.
		var ops []porcupine.Operation
		for _, e := range n.eras {
			ops = append(ops, e.h.Operations()...)
		}
		if !porcupine.CheckOperations(kvmodel.Model, ops) {
			msg := fmt.Sprintf("the history of %d operations across %d eras, no hand-off timed out, is not linearizable", len(ops), len(n.eras))
			if simTrace {
				msg += "\n" + explain(ops, time.Time{})
			}
			return msg
		}
	}
	for i, e := range n.eras {
		by := map[string][]porcupine.Operation{}
		for _, op := range e.h.Operations() {
			k := op.Input.(kvmodel.Input).Key
			by[k] = append(by[k], op)
		}
		for k, ops := range by {
			m := kvmodel.Model
			m.Partition = nil
			init := e.init[k]
			m.Init = func() any { return init }
			if !porcupine.CheckOperations(m, ops) {
				msg := fmt.Sprintf("era %d (from %v): the history of key %s (%d operations) is not linearizable", i, init, k, len(ops))
				if simTrace {
					msg += "\n" + explain(ops, time.Time{})
				}
				return msg
			}
		}
	}
	return ""
}

// localRestore is the result of a restore of a local log (--wal disk or
// none), once its appender exists: the store's clock, ingest offsets and
// offsets; the lease wait skipped at a process's first restore where no
// other process can have served (the cluster's first epoch, a restart of
// the same process, a hand-off through a final snapshot).
func (in *inst) localRestore(handedOver bool) (core.Restore, map[int32]int64) {
	r := core.Restore{FencedAt: in.w.now, SkipLeaseWait: in.restores == 1 && (in.epoch == 1 || in.restarted || handedOver)}
	var err error
	if r.Clock, err = in.st.Clock(); err != nil {
		panic(err)
	}
	if r.Ingest, err = in.st.IngestOffsets(); err != nil {
		panic(err)
	}
	offs, _ := in.st.Offsets()
	return r, offs
}
