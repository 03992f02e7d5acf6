package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/wal"
)

// --wal none under the simulator: each owner runs wal/local's None over a
// memory store, backed up every simBackupEvery when snapshot.Backups says
// one is due, and handed off through the bucket (sim_handoff_test.go). A
// process restarted after a kill -9 has its memory, and its store, gone: it
// seeds from the bucket as a new owner does, and loses exactly what was
// acknowledged since the newest backup, which the eras check.

const simBackupEvery = 200 * time.Millisecond

// backupEvery is node's backupEvery: at each tick, a backup if
// snapshot.Backups says one is due.
func (in *inst) backupEvery(plan *snapshot.Backups) {
	w := in.w
	w.after(simBackupEvery, func() {
		if in.killed || in.core.State() == core.Stopped || in.core.State() == core.Deposed {
			return
		}
		if plan.Due(in.core.State() == core.Serving, in.st) {
			if m, err := in.backup(false); err == nil {
				plan.Uploaded(m)
			}
		}
		in.backupEvery(plan)
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

// restoreNone plays the restore of a None partition: the registry says
// whether this instance still owns it; an empty store (a new owner, or a
// process restarted with its memory gone) is seeded from the bucket
// (seed); then the appender and the claim.
func (in *inst) restoreNone() {
	w := in.w
	var try func()
	try = func() {
		if in.killed {
			return
		}
		if w.epoch != in.epoch {
			in.deposed(fmt.Errorf("the registry has epoch %d", w.epoch))
			return
		}
		if offs, _ := in.st.Offsets(); len(offs) > 0 {
			// The memory store is the state (a re-sync): only a new
			// appender. An empty one is seeded at every restore, as
			// node's (partition/restore.go's startingPoint).
			in.appenderNone(false)
			return
		}
		in.seed(in.appenderNone, try)
	}
	w.after(w.dur(0, 5*time.Millisecond), try)
}

// appenderNone makes the None appender, claims the partition in the bucket
// and reports the restore. A failed claim is tried again (node: the
// restore fails and is retried).
func (in *inst) appenderNone(handedOver bool) {
	w := in.w
	app, err := in.none.NewAppender(context.Background())
	if err != nil {
		panic(err)
	}
	err = in.claim()
	if errors.Is(err, snapshot.ErrNewerOwner) {
		in.deposed(err)
		return
	}
	if err != nil {
		w.after(20*time.Millisecond, func() { in.appenderNone(handedOver) })
		return
	}
	in.app = app
	r, offs := in.localRestore(handedOver)
	in.publish(offs)
	if in.restores == 1 {
		in.backupEvery(&snapshot.Backups{})
	}
	in.do(func() { in.d.Restored(r) })
}
