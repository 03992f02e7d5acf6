package core

import (
	"time"

	"github.com/sluicedb/sluice/kv"
)

// Driver carries out a Core's Readys: the one place that knows the order in
// which a Ready's fields are done, that a failed store write fails the ones
// after it, and how a request's reads are completed before the core sees it.
// It is synchronous: it starts no goroutines and reads no clock (Effects.Now
// is its time), so the partition's loop, the simulator and the scripts'
// harness all drive this same code, each with its own Effects.
//
// Each input method steps the core and carries out every Ready that follows,
// including the Readys its store writes lead to.
type Driver struct {
	core  *Core
	store Store
	cache VersionCache
	io    Effects
	// held: store writes wait for ApplyNext (the simulator and the scripts
	// delay them); otherwise they happen in the Ready that asks for them, as
	// the partition's loop does.
	held    bool
	toApply []*Group
}

// Store is what the driver reads and writes: the partition's committed state.
type Store interface {
	// Apply writes a committed group's changes and offsets in one write.
	Apply(b kv.Write) error
	// GetMany reads the committed state of keys.
	GetMany(keys [][]byte) ([]kv.Read, error)
}

// VersionCache is a cache of committed keys' state (versions, and values
// where it holds them) that the driver keeps equal to the store's: it fills
// requests from it, tells it every store read it makes and every store
// write (before and after), and empties it when a restore begins and when
// it ends.
type VersionCache interface {
	// Fill completes r's reads its caller did not make, where the cache
	// can: the store's state after seen writes.
	Fill(r *Request, seen uint64)
	// Read records a state read from the store.
	Read(key []byte, r kv.Read)
	// Writing: a store write begins. Wrote: it ended, with these changes
	// and this error.
	Writing()
	Wrote(changes []kv.Change, err error)
	// Reset forgets every cached state: a restore begins (restoring) or
	// ended. Nothing outside the driver caches a read until it ended.
	Reset(restoring bool)
}

// Effects is what a Ready asks of the world outside the core, one method a
// field, called in the order of Ready's fields. None may block.
type Effects interface {
	// Now is the time of every input the driver hands the core.
	Now() time.Time
	// StopIngest stops the ingest consumer.
	StopIngest()
	// Reply sends a reply to its caller.
	Reply(r Reply)
	// Append hands a group to the appender; its outcome comes back through
	// Driver.Appended.
	Append(g *Group)
	// Queued says g is to be written to the store (at once, or at the next
	// ApplyNext of a held driver).
	Queued(g *Group)
	// Stored reports the store write of g's batch b, and its error.
	Stored(g *Group, b kv.Write, err error)
	// Restore starts a restore; its outcome comes back through
	// Driver.Restored.
	Restore()
	// StartIngest starts the ingest consumer.
	StartIngest(s *IngestStart)
	// WakeAt asks for a Driver.Tick at t.
	WakeAt(t time.Time)
	// Stop: the partition is done; once the input that stopped it returns,
	// close the appender and the store.
	Stop()
	// Carried is called after every Ready: publish the core's state.
	Carried()
}

// NewDriver drives c over st, keeping cache (nil: none) exact, with io. A
// held driver writes to the store only on ApplyNext.
func NewDriver(c *Core, st Store, cache VersionCache, io Effects, held bool) *Driver {
	return &Driver{core: c, store: st, cache: cache, io: io, held: held}
}

// Core is the core the driver drives.
func (d *Driver) Core() *Core { return d.core }

// Start carries out the Ready of a new core (its first restore).
func (d *Driver) Start() { d.carry() }

// Step completes r's reads and hands it to the core: for a serving core, the
// cache, then the store for what the core says it lacks (Core.Stale). A failed store read fails r and re-syncs.
func (d *Driver) Step(r *Request) {
	defer d.carry()
	now := d.io.Now()
	if d.core.State() != Serving {
		d.core.Request(now, r) // answered at once
		return
	}
	if r.Reads == nil {
		r.Reads = make([]Read, r.NumKeys())
	}
	seen := d.core.Applies()
	if d.cache != nil {
		d.cache.Fill(r, seen)
	}
	stale := d.core.Stale(r)
	if len(stale) > 0 && d.cache != nil {
		// Read before a store write since: the cache, current here, may
		// hold them.
		for _, i := range stale {
			r.Reads[i].OK = false
		}
		d.cache.Fill(r, seen)
		stale = d.core.Stale(r)
	}
	if len(stale) > 0 {
		keys := make([][]byte, len(stale))
		for j, i := range stale {
			keys[j] = r.KeyAt(i)
		}
		reads, err := d.store.GetMany(keys)
		if err != nil {
			d.core.ReadFailed(now, r, err)
			return
		}
		for j, i := range stale {
			r.Reads[i] = Read{Read: reads[j], OK: true, Seen: seen}
			if d.cache != nil {
				d.cache.Read(keys[j], reads[j])
			}
		}
	}
	d.core.Request(now, r)
}

// Appended reports the outcome of group n's append.
func (d *Driver) Appended(n uint64, offsets []int64, err error) {
	d.core.Appended(d.io.Now(), n, offsets, err)
	d.carry()
}

// Restored reports the outcome of a restore.
func (d *Driver) Restored(r Restore) {
	if d.cache != nil {
		d.cache.Reset(false) // what was read while the store was rewritten
	}
	d.core.Restored(d.io.Now(), r)
	d.carry()
}

// Tick tells the core the time has come that it asked for.
func (d *Driver) Tick() {
	d.core.Tick(d.io.Now())
	d.carry()
}

// Close closes the partition gracefully.
func (d *Driver) Close() {
	d.core.Close(d.io.Now())
	d.carry()
}

// Kill stops the partition at once.
func (d *Driver) Kill() {
	d.core.Kill(d.io.Now())
	d.carry()
}

// Pending is the number of store writes a held driver has queued.
func (d *Driver) Pending() int { return len(d.toApply) }

// ApplyNext writes the oldest queued group of a held driver to the store
// (after a failed one, the groups behind it fail unwritten) and carries out
// what follows. It reports whether there was one.
func (d *Driver) ApplyNext() bool {
	if len(d.toApply) == 0 {
		return false
	}
	g := d.toApply[0]
	d.toApply = d.toApply[1:]
	if err := d.write(g); err != nil {
		d.fail(d.toApply, err)
		d.toApply = nil
	}
	d.carry()
	return true
}

// carry carries out the core's Ready, in the order of its fields, and the
// Readys its store writes lead to.
func (d *Driver) carry() {
	rd := d.core.Ready()
	for {
		if rd.StopIngest {
			d.io.StopIngest()
		}
		for _, r := range rd.Replies {
			d.io.Reply(r)
		}
		if rd.Append != nil {
			d.io.Append(rd.Append)
		}
		for _, g := range rd.Apply {
			d.io.Queued(g)
		}
		if d.held {
			d.toApply = append(d.toApply, rd.Apply...)
		} else {
			for i, g := range rd.Apply {
				if err := d.write(g); err != nil {
					d.fail(rd.Apply[i+1:], err)
					break
				}
			}
		}
		if rd.Restore {
			if d.cache != nil {
				d.cache.Reset(true)
			}
			d.io.Restore()
		}
		if rd.StartIngest != nil {
			d.io.StartIngest(rd.StartIngest)
		}
		if !rd.WakeAt.IsZero() {
			d.io.WakeAt(rd.WakeAt)
		}
		if rd.Stop {
			d.io.Stop()
		}
		d.io.Carried()
		if rd.Stop || len(rd.Apply) == 0 || d.held {
			return
		}
		rd = d.core.Ready()
	}
}

// write writes a committed group to the store (changes and offsets in one
// write) and reports it to the core. After a failed write the groups behind
// it are not written (the store's offsets would claim the failed one): the
// caller fails them (fail).
func (d *Driver) write(g *Group) error {
	b := g.StoreWrite()
	b.SyncedAt = d.io.Now().UnixMilli() // the slots' only writer: behind the log by its groups in flight only
	if d.cache != nil {
		d.cache.Writing()
	}
	err := d.store.Apply(b)
	if d.cache != nil {
		d.cache.Wrote(b.Changes, err)
	}
	d.io.Stored(g, b, err)
	d.core.Applied(d.io.Now(), g.N, err)
	return err
}

// fail reports groups unwritten behind a failed write as failed with it.
func (d *Driver) fail(gs []*Group, err error) {
	for _, g := range gs {
		d.core.Applied(d.io.Now(), g.N, err)
	}
}
