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
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/wal"
)

// --wal none under the simulator: each owner runs wal/local's None over a
// memory store, backed up every simBackupEvery to a snapshot bucket with
// the real snapshot code (snapshot.Write, Bucket.Upload, Restore, Announce,
// Finish) over gocloud's memblob with faults (sim_bucket_test.go): calls
// that fail, and a paused owner's manifest that lands late. What node/
// does around it is played here as node/backups.go and node/modes.go do it:
//
//   - a new owner (a move, or a process restarted after kill -9 with its
//     memory gone) waits for the previous owner's final snapshot (up to
//     simHandoff), restores the newest snapshot, announces itself, and then
//     its None appender numbers after the restored offsets;
//   - an owner's appends hold only while the registry names it (the
//     ownership lease; nothing fences a local log);
//   - a partition that stops (closed by a move, or deposed) takes a final
//     snapshot and marks the owner record final.
//
// A crash and a hand-off that timed out lose what was acknowledged since the
// newest backup: that is the mode's promise (README, "What each mode
// promises"). So the history is checked in eras, one per owner incarnation
// that restored from the bucket, each from the state it restored, and the
// promises beside it:
//
//   - a restore loads exactly the newest backup (of the newest epoch, then
//     the newest taken) that reached the bucket: "a crash loses the writes
//     since the newest backup, exactly"; "a deposed owner's late backup
//     never wins a restore over the new owner's";
//   - a hand-off through a final snapshot loses nothing (the new owner's
//     store is the old one's at its close);
//   - no owner of an older era answers a request after a newer one served
//     (the lease).

const (
	simBackupEvery = 200 * time.Millisecond
	simHandoff     = 600 * time.Millisecond
)

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

// noneWorld is the world's part for --wal none: the bucket, the backups
// taken, the eras and the promises found broken.
type noneWorld struct {
	bucket   *snapshot.Bucket
	blob     *simBlob
	backups  map[string]*simBackup // by manifest key
	taken    int
	work     string
	eras     []*simEra
	problems []string
}

func (w *world) openNone() {
	dir, err := os.MkdirTemp(simCacheRoot(), "sluice-sim-none-")
	if err != nil {
		panic(err)
	}
	n := &noneWorld{backups: map[string]*simBackup{}, work: dir}
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
	w.none = n
}

func (w *world) closeNone() {
	if w.none == nil {
		return
	}
	w.none.bucket.Close()
	os.RemoveAll(w.none.work)
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
	n := in.w.none
	n.blob.writer = in
	defer func() { n.blob.writer = nil }()
	return fn(n.bucket)
}

var simSpec = struct {
	rng  keyspace.Range
	part uint32
}{keyspace.Range{From: 0, To: simSlots}, 1}

// backup takes a snapshot of in's store and uploads it (node.backup).
func (in *inst) backup(final bool) (snapshot.Manifest, error) {
	n := in.w.none
	parent := filepath.Join(n.work, "backups", "i"+strconv.Itoa(in.id))
	m, dir, err := snapshot.Write(context.Background(), in.st, parent, snapshot.Manifest{
		Cluster: "sim", Partition: simSpec.part, Range: simSpec.rng, Slots: simSlots, Epoch: in.epoch, WAL: "none", Final: final,
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

// backupEvery backs up a serving owner's store when it changed (node.backupEvery).
func (in *inst) backupEvery(last map[int32]int64) {
	w := in.w
	w.after(simBackupEvery, func() {
		if in.killed || in.core.State() == core.Stopped || in.core.State() == core.Deposed {
			return
		}
		if in.core.State() == core.Serving {
			if now, _ := in.st.Offsets(); !maps.Equal(now, last) {
				if m, err := in.backup(false); err == nil {
					last = m.Offsets
				}
			}
		}
		in.backupEvery(last)
	})
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
		finish := func() {
			err = in.bucketCall(func(b *snapshot.Bucket) error { return b.Finish(context.Background(), m, "i"+strconv.Itoa(in.id)) })
			in.finalDone = err == nil
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

// appendNone: the None appender, under the ownership lease (the registry
// must still name this owner), commits at once; the answer comes back
// after a delay.
func (in *inst) appendNone(g *core.Group) {
	w := in.w
	app := in.app
	var offs []int64
	var err error
	if w.epoch != in.epoch {
		err = fmt.Errorf("%w: the ownership lease is lost: the registry has epoch %d", wal.ErrNotCommitted, w.epoch)
	} else if offs, err = app.Append(context.Background(), &g.Group); err == nil {
		for i, r := range g.Records {
			if r.Kind == kv.KindChange {
				l := w.log
				l.slots[r.Slot] = append(l.slots[r.Slot], wal.Positioned{Record: r, Offset: offs[i]})
			}
		}
	}
	w.trace("i%d g%d %s: %v", in.id, g.N, groupSummary(g), err)
	// The replies the outcome releases were decided here, at the append's
	// ownership check (node/lease.go): a pause after it delays them, and
	// no lease can close that window (the node was still the owner).
	checked := w.now
	w.after(w.dur(0, 2*time.Millisecond), func() {
		in.do(func() {
			in.decidedAt = checked
			in.d.Appended(g.N, offs, err)
			in.decidedAt = time.Time{}
		})
	})
}

// restoreNone plays the seed (node.seedHandoff), the appender and the
// announcement: wait for the previous owner's final snapshot, restore the
// newest snapshot into the empty memory store, announce. A failing bucket
// makes it try again.
func (in *inst) restoreNone() {
	w := in.w
	deadline := w.now.Add(simHandoff)
	var try func()
	try = func() {
		if in.killed {
			return
		}
		if w.epoch != in.epoch {
			in.do(func() {
				in.d.Restored(core.Restore{Err: fmt.Errorf("%w: the registry has epoch %d", ErrDeposed, w.epoch)})
			})
			return
		}
		if in.restores > 1 || in.seeded {
			// A re-sync: the memory store is the state; only a new appender.
			in.appenderNone(false)
			return
		}
		var o snapshot.Owner
		var ok bool
		err := in.bucketCall(func(b *snapshot.Bucket) (err error) {
			o, ok, err = b.Owner(context.Background(), simSpec.part)
			return err
		})
		if err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
			w.after(20*time.Millisecond, try)
			return
		}
		if err == nil && ok && !o.Final && o.Epoch < in.epoch && w.now.Before(deadline) {
			w.after(50*time.Millisecond, try) // the previous owner may be handing over
			return
		}
		handedOver := err == nil && ok && o.Final && o.Epoch+1 == in.epoch
		work := filepath.Join(w.none.work, "restore", "i"+strconv.Itoa(in.id))
		var restored bool
		err = in.bucketCall(func(b *snapshot.Bucket) (err error) {
			_, restored, err = b.Restore(context.Background(), snapshot.Want{Partition: simSpec.part, Range: simSpec.rng, Slots: simSlots}, in.st, work, zerolog.Nop())
			return err
		})
		os.RemoveAll(work)
		if err != nil {
			w.trace("i%d seed: %v", in.id, err)
			w.after(20*time.Millisecond, try)
			return
		}
		in.seeded = true
		w.none.checkRestore(in, restored, handedOver && restored)
		in.appenderNone(handedOver && restored)
	}
	w.after(w.dur(0, 5*time.Millisecond), try)
}

// appenderNone makes the None appender, announces the owner and reports
// the restore.
func (in *inst) appenderNone(handedOver bool) {
	w := in.w
	app, err := in.none.NewAppender(context.Background())
	if err != nil {
		panic(err)
	}
	err = in.bucketCall(func(b *snapshot.Bucket) error {
		return b.Announce(context.Background(), simSpec.part, simSpec.rng, in.epoch, "i"+strconv.Itoa(in.id))
	})
	if errors.Is(err, snapshot.ErrNewerOwner) {
		in.do(func() { in.d.Restored(core.Restore{Err: fmt.Errorf("%w: %w", ErrDeposed, err)}) })
		return
	}
	if err != nil {
		w.after(20*time.Millisecond, func() { in.appenderNone(handedOver) })
		return
	}
	in.app = app
	r := core.Restore{FencedAt: w.now, SkipLeaseWait: in.restores == 1 && (in.epoch == 1 || in.restarted || handedOver)}
	if r.Clock, err = in.st.Clock(); err != nil {
		panic(err)
	}
	if r.Ingest, err = in.st.IngestOffsets(); err != nil {
		panic(err)
	}
	offs, _ := in.st.Offsets()
	in.publish(offs)
	if in.restores == 1 {
		in.backupEvery(offs)
	}
	in.do(func() { in.d.Restored(r) })
}

// checkRestore holds a restore to the promises: it loaded exactly the
// newest backup in the bucket (the newest epoch, then the newest taken);
// after a hand-off through a final snapshot, exactly the old owner's state
// at its close. It opens in's era from the state it restored.
func (n *noneWorld) checkRestore(in *inst, restored, handedOver bool) {
	got := stateOf(in)
	var want *simBackup
	for _, b := range n.backups {
		if b.landed && (want == nil || b.epoch > want.epoch || (b.epoch == want.epoch && b.seq > want.seq)) {
			want = b
		}
	}
	switch {
	case want == nil && restored:
		n.problems = append(n.problems, fmt.Sprintf("i%d restored a snapshot from a bucket that holds none", in.id))
	case want != nil && !restored:
		n.problems = append(n.problems, fmt.Sprintf("i%d restored nothing; the bucket holds the backup %s", in.id, want.key))
	case want != nil && !maps.Equal(got, want.state):
		n.problems = append(n.problems, fmt.Sprintf("i%d (epoch %d) restored %v; the newest backup in the bucket is %s (epoch %d, taken by i%d): %v", in.id, in.epoch, got, want.key, want.epoch, want.takenBy.id, want.state))
	}
	if prev := n.previous(in); handedOver && prev != nil && prev.finalDone && !maps.Equal(got, prev.finalState) {
		n.problems = append(n.problems, fmt.Sprintf("i%d took the partition over through i%d's final snapshot and restored %v; i%d closed with %v", in.id, prev.id, got, prev.id, prev.finalState))
	}
	in.era = len(n.eras)
	n.eras = append(n.eras, &simEra{init: got, h: &kvmodel.History{}})
}

// previous is the owner of the epoch before in's.
func (n *noneWorld) previous(in *inst) *inst {
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
	if w.none == nil {
		return h
	}
	if target.era < 0 {
		panic(fmt.Sprintf("i%d answered before it restored", target.id))
	}
	e := w.none.eras[target.era]
	if ok {
		for i, later := range w.none.eras[target.era+1:] {
			if !later.served.IsZero() && decided.After(later.served) {
				w.none.problems = append(w.none.problems, fmt.Sprintf("i%d (era %d) answered at %s, after the owner of era %d served from %s", target.id, target.era, decided.Sub(w.start), target.era+1+i, later.served.Sub(w.start)))
			}
		}
	}
	return e.h
}

// check checks each era's history from the state it restored, and the
// promises checkRestore and history recorded.
func (n *noneWorld) check() string {
	if len(n.problems) > 0 {
		return n.problems[0]
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
