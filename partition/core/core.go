package core

import (
	"time"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
)

// State is where a partition is in its life.
type State uint8

const (
	// Restoring: not serving; a restore (fence, replay) or the lease wait
	// after it is under way. Requests get a *RestoringError.
	Restoring State = iota + 1
	// Serving: taking requests.
	Serving
	// Closing: a graceful close waits for the group in flight.
	Closing
	// Deposed: a newer owner has the partition; it never serves again.
	Deposed
	// Stopped: done; the loop closes the appender and the store.
	Stopped
)

func (s State) String() string {
	switch s {
	case Restoring:
		return "restoring"
	case Serving:
		return "serving"
	case Closing:
		return "closing"
	case Deposed:
		return "deposed"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Ready is what the loop must do after the core's last steps, in the order of
// its fields.
type Ready struct {
	// StopIngest: stop the ingest consumer (and, with Restore or Stop, the
	// appender's flusher) before anything else.
	StopIngest bool
	// Replies go to their callers now. Each is true as sent: a write's group
	// committed, a read rests only on durable state, a failure is certain
	// (or says the outcome is unknown).
	Replies []Reply
	// Append, if set, is the next group to append (at most one is in flight).
	// Report its outcome with Appended.
	Append *Group
	// Apply are committed groups to write to the store, in order, after the
	// Append above was handed out (the next transaction does not wait for the
	// store). Report each with Applied. Once one fails, do not write the
	// ones after it (the store's offsets would claim the failed one): report
	// them failed too.
	Apply []*Group
	// Restore asks for a restore: fence, then replay the log into the store,
	// then report Restored. The core asks only once no store write it asked
	// for is outstanding.
	Restore bool
	// StartIngest, if set, starts the ingest consumer.
	StartIngest *IngestStart
	// WakeAt, if not zero, is when the core wants a Tick.
	WakeAt time.Time
	// Stop: the partition is done; close the appender and the store.
	Stop bool
}

// IngestStart starts an ingest consumer: generation Gen reads each slot from
// its next offset in From.
type IngestStart struct {
	Gen  uint64
	From map[int32]int64
}

// Restore is the outcome of a restore.
type Restore struct {
	// Err, if set, wraps ErrDeposed: a newer owner has the partition.
	Err error
	// FencedAt is when fencing returned: from then on no older writer can
	// commit. A new owner serves a Lease after it (a deposed owner may answer
	// reads for up to a lease after its last commit, which was before).
	FencedAt time.Time
	// SkipLeaseWait: no other process can have served this epoch (a restart
	// on its own locked disk): serve at once.
	SkipLeaseWait bool
	// Clock is the highest clock stamp in the store.
	Clock uint64
	// Ingest is the next ingest offset per slot of the range.
	Ingest map[int32]int64
}

// Core is a partition's state machine. Not safe for concurrent use: the
// partition's goroutine owns it.
type Core struct {
	cfg     Config
	state   State
	deposed error
	clock   *clock.HLC
	lm      lineMonitor
	// overlay is the speculative view: every key written by a group not yet
	// applied to the store. Reads look here first, then at what was read
	// from the store.
	overlay map[string]pending
	// open collects the next group's records; sealed are full groups
	// waiting behind inflight; inflight is being appended; unapplied have
	// committed and wait for their store write.
	open      *Group
	sealed    []*Group
	inflight  *Group
	unapplied []*Group
	recent    recent
	// committed is the newest committed group: overlay entries up to it are
	// durable, only not yet in the store.
	committed uint64
	// proven is when ownership was last proven: when the newest committed
	// group was handed out, or fencing returned.
	proven time.Time
	// restored is the restore waiting for its lease to pass before serving.
	restored *Restore
	// restoring: a restore was asked for and has not reported.
	restoring bool
	// resync: a restore must begin once outstanding store writes are done.
	resync    bool
	drainBy   time.Time
	ingestPos map[int32]int64
	ingestGen uint64
	ingesting bool
	// quarantine is the end (exclusive) of ingest offsets per slot that went
	// into a group the log refused for good: each such record is appended
	// alone until passed; poisoned records go straight to the DLQ.
	quarantine map[int32]int64
	poisoned   map[kv.Source]string
	ready      Ready
}

// New returns a core that starts by restoring: its first Ready asks for it.
func New(cfg Config) *Core {
	cfg.setDefaults()
	c := &Core{
		cfg:        cfg,
		state:      Restoring,
		lm:         lineMonitor{limit: cfg.WindowSize},
		overlay:    make(map[string]pending),
		open:       &Group{N: 1},
		clock:      clock.New(0),
		quarantine: make(map[int32]int64),
		poisoned:   make(map[kv.Source]string),
	}
	c.recent.init()
	c.restoring = true
	c.ready.Restore = true
	return c
}

// Ready returns what to do and clears it.
func (c *Core) Ready() Ready {
	rd := c.ready
	c.ready = Ready{}
	return rd
}

// State is the core's state.
func (c *Core) State() State { return c.state }

// Busy says intake must pause: the window or the groups waiting are at their
// bound. Requests to a core that does not serve are answered at once, so
// only a serving core is ever busy.
func (c *Core) Busy() bool {
	return c.state == Serving && (c.lm.full() || c.open.bytes >= c.cfg.MaxGroupBytes || len(c.sealed) > 0)
}

// Held is the number of replies the line monitor holds.
func (c *Core) Held() int { return c.lm.len() }

// Applies is the number of store writes the core has seen done: a store read
// made after it returned n reflects at least the first n (Read.Seen).
func (c *Core) Applies() uint64 { return c.recent.n }

// QuietUntil is until when a read of the store's committed state is
// linearizable without the loop: while the core serves, every write it
// took is in the store (none is pending, so the store holds the
// partition's whole acknowledged state), and its lease holds (no other
// owner can have written since). The zero time: not now.
func (c *Core) QuietUntil() time.Time {
	if c.state != Serving || len(c.overlay) > 0 || len(c.unapplied) > 0 || c.resync {
		return time.Time{}
	}
	if c.cfg.Lease <= 0 {
		return time.Unix(1<<62, 0)
	}
	return c.proven.Add(c.cfg.Lease)
}

// Deposed is the error a deposed core answers with, if it is deposed.
func (c *Core) Deposed() error { return c.deposed }

func (c *Core) reply(r Reply) { c.ready.Replies = append(c.ready.Replies, r) }

func (c *Core) fail(req *Request, err error) {
	if req.Handle != nil {
		c.reply(Reply{Handle: req.Handle, Err: err})
	}
}

// owns checks a key is in the partition's range.
func (c *Core) owns(key []byte) error {
	if !c.cfg.Range.Contains(keyspace.Slot(key, c.cfg.Slots)) {
		return ErrWrongPartition
	}
	return nil
}

// check validates a single key of a request.
func (c *Core) check(key []byte) error {
	if err := kv.ValidateKey(key); err != nil {
		return err
	}
	return c.owns(key)
}

// unavailable is the answer of a core that does not serve.
func (c *Core) unavailable() error {
	switch c.state {
	case Deposed:
		return c.deposed
	case Closing, Stopped:
		return ErrStopped
	}
	return &RestoringError{Partition: c.cfg.ID}
}
