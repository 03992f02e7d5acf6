package partition

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// Config describes a partition and what it needs. Zero values take the
// defaults written on each field.
type Config struct {
	// Config is the core's: ID, Range, Slots, Epoch, the read lease and its
	// wait, the line monitor's window, the group bound, the stages.
	core.Config
	// Store is the partition's committed state; the partition closes it.
	Store store.Store
	// WAL is the partition's write-ahead log in the node's storage mode:
	// the restore opens its appender (fencing every older writer of the
	// slots) and replays it from the store's offsets.
	WAL wal.Log
	Log zerolog.Logger
	// InboxSize bounds queued requests; beyond it callers get ErrInboxFull. Default 1024.
	InboxSize int
	// MaxQueuedBytes bounds the bytes of the requests the partition holds
	// (queued or waiting for their reply); beyond it callers get
	// ErrOverBudget. Default 64 MiB.
	MaxQueuedBytes int64
	// NodeBudget, if set, bounds the same bytes across the node's partitions.
	NodeBudget *Budget
	// ReadCache is the node's cache of committed values (readcache.go),
	// shared by its partitions. Nil: the partition keeps one of its own, of
	// 8 MiB.
	ReadCache *ReadCache
	// Metrics, if set, is where the partition reports.
	Metrics *Metrics
	// Ingest, if set, is the partition's source of ingest records: its
	// slots of the ingest topic (ingest.go).
	Ingest IngestSource
	// SkipLeaseWait lets the first restore serve without waiting Lease after
	// fencing. Set it only when this store last served this same epoch under
	// the node's previous process on this very data directory, whose
	// exclusive lock the caller now holds (no earlier process on it is
	// alive), and no other process of the node registered between (node's
	// incarnations): no other process can have answered a read of it since,
	// so there is no deposed owner's lease to wait out. Or when the partition
	// is a brand-new cluster's, opened by the process that created it, and
	// no other partition ever held any of its slots (registry/firstowner.go).
	// Every later restore (a re-sync) waits.
	SkipLeaseWait bool
	// now is the wall clock of the retention checks (tests); nil: time.Now.
	now func() time.Time
	// Seed, if set, fills an empty store before its first restore (from the
	// newest snapshot); the replay then starts at the offsets it loaded.
	// handedOver says the snapshot was the final one of the owner of the
	// epoch just before this one, taken after it had stopped serving (a
	// planned --wal disk or none hand-off): no other process can answer for
	// the partition any longer, so the first restore serves without waiting
	// out a deposed owner's lease, as with SkipLeaseWait.
	Seed func(ctx context.Context) (handedOver bool, err error)
	// DiscardCorrupt says the log holds every acknowledged write (WAL
	// kafka): a store found corrupt (a read wrapping store.ErrCorrupt: a
	// power cut or a failed sync lost pages the store's offsets had already
	// reached) is emptied at the re-sync and restored afresh (Seed, then the
	// log), as an empty disk is. Without it (the store is the log) the
	// partition does not serve again: every restore fails, naming the
	// corruption (corrupt.go).
	DiscardCorrupt bool
	// Owns, if set, is asked twice in every restore, from a fresh read of the
	// registry, whether this node still owns the partition at this epoch:
	// before fencing, and again once its own producer is fenced in (which
	// closes the race of a partition removed meanwhile). An error wrapping
	// ErrDeposed stops the partition for good.
	Owns func(ctx context.Context) error
}

// Errors of a partition (the core's; server/status.go maps them to codes).
var (
	ErrInboxFull      = core.ErrInboxFull
	ErrStopped        = core.ErrStopped
	ErrAppendFailed   = core.ErrAppendFailed
	ErrWrongPartition = core.ErrWrongPartition
	ErrDeposed        = core.ErrDeposed
)

type (
	// RestoringError says the partition does not serve yet (Unavailable).
	RestoringError = core.RestoringError
	// VersionMismatchError fails a compare-and-set (Aborted).
	VersionMismatchError = core.VersionMismatchError
	// NotIntegerError fails an Increment (FailedPrecondition).
	NotIntegerError = core.NotIntegerError
	// WriteResult says where one change landed.
	WriteResult = core.WriteResult
)

// Partition serves one slot range. One goroutine owns all of its state; the
// methods below only talk to it through the inbox.
type Partition struct {
	cfg     Config
	inbox   chan *request
	ctx     context.Context
	stop    context.CancelFunc
	closing chan struct{} // closed by Close: drain, then stop
	once    sync.Once
	done    chan struct{}
	wg      sync.WaitGroup

	// state is the partition's published state (state.go): callers read
	// it to answer fast while not serving; the loop is the authority (the
	// core answers again from its own state).
	state   published
	view                  // committed state, for reads that skip the inbox
	applies atomic.Uint64 // the core's store writes so far (reads.go)
	quiet   quiet         // until when reads need not go through the loop (quiet.go)
	values  *values       // committed keys' state (values.go); the loop writes it
	budget  *Budget       // bytes of requests held (budget.go)
	metrics *partitionMetrics
	loop    loop // owned by the loop goroutine
}

// request is a core request with the channel its reply goes to.
type request struct {
	core.Request
	reply chan core.Reply // buffered 1: the loop never blocks on a reply
	cost  int64           // bytes taken from the budgets until the reply
}

// Start starts the partition: it restores (replays the log into the store)
// and then serves. Requests before that get a *RestoringError.
func Start(cfg Config) *Partition {
	if cfg.InboxSize == 0 {
		cfg.InboxSize = 1024
	}
	ownCache := cfg.ReadCache == nil
	if ownCache {
		cfg.ReadCache = NewReadCache(8 << 20)
	}
	if cfg.MaxQueuedBytes == 0 {
		cfg.MaxQueuedBytes = 64 << 20
	}
	cfg.Log = cfg.Log.With().Uint32("partition", cfg.ID).Uint64("epoch", cfg.Epoch).Logger()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Partition{
		cfg:     cfg,
		inbox:   make(chan *request, cfg.InboxSize),
		ctx:     ctx,
		stop:    cancel,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		values:  newValues(cfg.ReadCache),
		budget:  NewBudget(cfg.MaxQueuedBytes),
		quiet:   quiet{base: time.Now()},
	}
	p.state.init(State{Phase: RestoreDue, Epoch: cfg.Epoch})
	p.metrics = cfg.Metrics.forPartition(cfg.ID)
	p.view = view{st: cfg.Store, done: p.done, cache: p.values}
	if ownCache {
		go func() { <-p.done; cfg.ReadCache.Close() }()
	}
	p.loop.init(p)
	go p.run()
	return p
}

// ID is the partition's id.
func (p *Partition) ID() uint32 { return p.cfg.ID }

// Range is the partition's slot range.
func (p *Partition) Range() keyspace.Range { return p.cfg.Range }

// Epoch is the partition's epoch.
func (p *Partition) Epoch() uint64 { return p.cfg.Epoch }

// Upsert writes entries atomically and returns one result per entry once the
// transaction holding them has committed.
func (p *Partition) Upsert(ctx context.Context, entries []kv.Entry) ([]WriteResult, error) {
	r, err := p.call(ctx, &request{Request: core.Request{Op: core.OpUpsert, Entries: entries}})
	return r.Results, err
}

// Get returns the key's state once every write before it is durable.
func (p *Partition) Get(ctx context.Context, key []byte) (kv.Read, error) {
	if p.isQuiet() {
		if r, err := p.view.ReadCommitted(key); err == nil {
			return r, nil
		}
	}
	r, err := p.call(ctx, &request{Request: core.Request{Op: core.OpGet, Key: key}})
	return r.Read, err
}

// GetMany reads keys of the partition at one point, linearizably, in order
// until a committed value does not fit in b: out[i] is keys[i] for
// i < len(out), the keys from len(out) on were not read. A nil b reads
// every key.
func (p *Partition) GetMany(ctx context.Context, keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
	if p.isQuiet() {
		if reads, err := p.view.ReadCommittedMany(keys, b); err == nil {
			return reads, nil
		}
	}
	req := &request{Request: core.Request{Op: core.OpGetMany, Keys: keys}}
	if b != nil {
		// The caller's goroutine reads the committed values within b (what
		// prefetch does without a bound), and the request asks only for
		// the keys read. The loop reads again only keys a store write
		// changed since: values just written, which the node held anyway.
		if !p.Serving() {
			return nil, p.unavailable()
		}
		seen := p.applies.Load()
		reads, err := p.view.getMany(keys, b)
		if err != nil {
			return nil, err
		}
		req.Keys = keys[:len(reads)]
		req.Reads = make([]core.Read, len(reads))
		for i, r := range reads {
			req.Reads[i] = core.Read{Read: r, OK: true, Seen: seen}
		}
		if len(reads) == 0 {
			return nil, nil
		}
	}
	r, err := p.call(ctx, req)
	return r.Reads, err
}

// Remove deletes the key; existed says whether it was there.
func (p *Partition) Remove(ctx context.Context, key []byte) (existed bool, res WriteResult, err error) {
	r, err := p.call(ctx, &request{Request: core.Request{Op: core.OpRemove, Key: key}})
	if len(r.Results) > 0 {
		res = r.Results[0]
	}
	return r.Read.Found, res, err
}

// Increment adds delta to key's decimal int64 value (a missing key is 0) and
// returns the new value once it is durable. The key keeps its expiry unless
// ttl is positive.
func (p *Partition) Increment(ctx context.Context, key []byte, delta int64, ttl time.Duration) (int64, WriteResult, error) {
	r, err := p.call(ctx, &request{Request: core.Request{Op: core.OpIncrement, Key: key, Delta: delta, TTL: ttl}})
	if err != nil {
		return 0, WriteResult{}, err
	}
	return r.Counter, r.Results[0], nil
}

// ReadCommitted reads key's committed state directly from the store, not
// through the inbox: what EVENTUAL and SESSION reads see. It never returns a
// value whose transaction has not committed. Safe from any goroutine.
func (p *Partition) ReadCommitted(key []byte) (kv.Read, error) {
	if !p.Serving() {
		return kv.Read{}, p.unavailable()
	}
	return p.view.ReadCommitted(key)
}

// ReadCommittedMany is ReadCommitted of many keys at one point, within b
// (view.ReadCommittedMany).
func (p *Partition) ReadCommittedMany(keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
	if !p.Serving() {
		return nil, p.unavailable()
	}
	return p.view.ReadCommittedMany(keys, b)
}

// call hands req to the loop and waits on the caller's own context.
func (p *Partition) call(ctx context.Context, req *request) (core.Reply, error) {
	if !p.Serving() {
		return core.Reply{}, p.unavailable()
	}
	if err := p.admit(req); err != nil {
		return core.Reply{}, err
	}
	p.prefetch(&req.Request)
	req.reply = make(chan core.Reply, 1)
	req.Handle = req
	select {
	case p.inbox <- req:
	case <-p.done:
		p.refund(req)
		return core.Reply{}, ErrStopped
	default:
		p.refund(req)
		return core.Reply{}, ErrInboxFull
	}
	select {
	case r := <-req.reply:
		return r, p.decorate(r.Err)
	case <-ctx.Done():
		return core.Reply{}, ctx.Err()
	case <-p.done:
		// The loop answers every request it took before it ends: a reply that
		// is there wins (it may say the write committed).
		select {
		case r := <-req.reply:
			return r, p.decorate(r.Err)
		default:
			return core.Reply{}, ErrStopped
		}
	}
}

// decorate adds the restore's progress to a core's "restoring" answer.
func (p *Partition) decorate(err error) error {
	var re *RestoringError
	if errors.As(err, &re) {
		return p.unavailable()
	}
	return err
}

// Close stops the partition gracefully: it takes no more requests, fails the
// ones never appended (ErrStopped: safe to retry on the next owner), waits
// (up to 10 s) for the group in flight so its requests get their true
// outcome, then closes the appender and the store.
func (p *Partition) Close() error {
	p.once.Do(func() {
		p.closeAsked()
		close(p.closing)
	})
	<-p.done
	return nil
}

// Kill stops the partition at once: requests in flight fail with an error
// that says their outcome is unknown.
func (p *Partition) Kill() {
	p.stop()
	<-p.done
}

// InboxLen is the number of queued requests.
func (p *Partition) InboxLen() int { return len(p.inbox) }

// IsUnavailable reports errors that mean "this partition cannot serve now,
// try again": restoring, re-syncing, stopped, moved, a read refused because
// a sync failed under it.
func IsUnavailable(err error) bool {
	var re *RestoringError
	return errors.As(err, &re) || errors.Is(err, ErrAppendFailed) || errors.Is(err, ErrStopped) || errors.Is(err, ErrDeposed) ||
		errors.Is(err, store.ErrUnsynced)
}

// Len counts the partition's committed keys (a scan: for the control plane).
func (p *Partition) Len() (int, error) { return p.cfg.Store.Len() }
