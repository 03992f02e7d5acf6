package partition

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

// Appender appends a group of change records in one transaction
// (*changelog.Appender in production).
type Appender interface {
	Append(ctx context.Context, recs []*kgo.Record) error
	Close()
}

// Config describes a partition and what it needs. Zero values take the
// defaults written on each field.
type Config struct {
	ID    uint32
	Range keyspace.Range
	// Slots is the cluster's slot count.
	Slots int32
	Epoch uint64
	// Topic is the changelog topic.
	Topic string
	// Store is the partition's committed state; the partition closes it.
	Store store.Store
	// NewAppender creates the changelog producer; it must fence older producers
	// of the partition before it returns.
	NewAppender func(ctx context.Context) (Appender, error)
	// Replay reads the changelog from the given offsets up to its committed end
	// (changelog.Replay in production).
	Replay func(ctx context.Context, from map[int32]int64, fn func(changelog.Batch) error) (map[int32]int64, error)
	Log    zerolog.Logger
	// InboxSize bounds queued requests; beyond it callers get ErrInboxFull. Default 1024.
	InboxSize int
	// WindowSize bounds results held by the line monitor. Default 8192.
	WindowSize int
	// MaxGroupBytes bounds one append group (one transaction). Default 16 MiB.
	MaxGroupBytes int
	// VersionCacheKeys bounds the cache of committed keys' versions that lets
	// most writes skip a store read (about 100 bytes a key). Default 65536;
	// negative disables it.
	VersionCacheKeys int
	// Metrics, if set, is where the partition reports.
	Metrics *Metrics
	// Ingest, if set, consumes the partition's slots of the ingest topic from
	// the given next offsets, handing batches to deliver (which blocks while
	// the partition is busy), until ctx ends.
	Ingest func(ctx context.Context, from map[int32]int64, deliver func([]IngestRecord) error) error
	// IngestTopic is the ingest topic, where records produced to a slot that
	// does not own their key are forwarded.
	IngestTopic string
	// DLQTopic receives the ingest records that cannot be applied.
	DLQTopic string
	// Stages run on every upsert, from gRPC and from ingest alike, after
	// validation and the clock and before the state machine.
	Stages []pipeline.Stage
	// Lease is how long a committed transaction proves that this partition
	// still owns its slots. Within it, a read of a committed value answers at
	// once; after it, the read waits for a commit (a heartbeat if nothing else
	// is written), which a newer owner's fencing would refuse. A new owner waits
	// Lease after fencing before it serves, so a deposed one, paused or not,
	// never answers a read from a state the new owner has moved past.
	// 0 disables the check (a single owner that can never be deposed).
	Lease time.Duration
	// Seed, if set, fills an empty store before its first restore (from the
	// newest snapshot); the replay then starts at the offsets it loaded.
	Seed func(ctx context.Context) error
	// Owns, if set, is asked before every restore (which fences all other
	// producers of the partition) whether this node still owns the partition at
	// this epoch, from a fresh read of the registry; an error wrapping
	// ErrDeposed stops the partition for good.
	Owns func(ctx context.Context) error
}

// WriteResult says where one change landed.
type WriteResult struct {
	Version   uint64
	Timestamp uint64
	Slot      int32
	Offset    int64
}

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

	// serving is read by callers to answer fast while restoring; the loop is
	// the authority (it answers again from its own state).
	serving  atomic.Bool
	progress atomic.Int32          // restore percent
	deposed  atomic.Pointer[error] // set once a newer owner took over
	view                           // committed state, for reads that skip the inbox
	lag      atomic.Int64          // changelog offsets left to replay while restoring
	applies  atomic.Uint64         // the loop's store writes so far (prefetch.go)
	versions *versions             // committed keys' versions; the loop writes it
	state    loopState             // owned by the loop goroutine
	metrics  *partitionMetrics
}

type opKind uint8

const (
	opUpsert opKind = iota
	opGet
	opRemove
	opIngest
	opIncrement
)

type request struct {
	op      opKind
	entries []pipeline.Entry
	key     []byte
	delta   int64
	ingest  []IngestRecord
	gen     uint64     // the ingest consumer session that sent an opIngest
	reply   chan reply // buffered 1: the loop never blocks on a reply
	// pre are the committed values of keys(), read by the caller after seen
	// store writes (prefetch.go); nil if not read.
	pre  []prefetched
	seen uint64
}

// keyAt is the i-th of keys().
func (req *request) keyAt(i int) []byte {
	switch req.op {
	case opUpsert:
		return req.entries[i].Key
	case opIngest:
		return req.ingest[i].Key
	default:
		return req.key
	}
}

// needsData says whether the request reads values, not only versions.
func (req *request) needsData() bool { return req.op == opGet || req.op == opIncrement }

// keys are the keys req reads: its entries', its ingest records', or its key.
func (req *request) keys() [][]byte {
	var keys [][]byte
	switch req.op {
	case opUpsert:
		keys = make([][]byte, len(req.entries))
	case opIngest:
		keys = make([][]byte, len(req.ingest))
	default:
		keys = make([][]byte, 1)
	}
	for i := range keys {
		keys[i] = req.keyAt(i)
	}
	return keys
}

type reply struct {
	counter int64
	results []WriteResult
	value   store.Value
	found   bool
	err     error
}

// Start starts the partition: it restores (replays the changelog into the
// store) and then serves. Requests before that get a *RestoringError.
func Start(cfg Config) *Partition {
	if cfg.InboxSize == 0 {
		cfg.InboxSize = 1024
	}
	if cfg.WindowSize == 0 {
		cfg.WindowSize = 8192
	}
	if cfg.MaxGroupBytes == 0 {
		cfg.MaxGroupBytes = 16 << 20
	}
	if cfg.VersionCacheKeys == 0 {
		cfg.VersionCacheKeys = 1 << 16
	}
	cfg.Log = cfg.Log.With().Uint32("partition", cfg.ID).Uint64("epoch", cfg.Epoch).Logger()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Partition{
		cfg:      cfg,
		inbox:    make(chan *request, cfg.InboxSize),
		ctx:      ctx,
		stop:     cancel,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		versions: newVersions(cfg.VersionCacheKeys),
	}
	p.metrics = cfg.Metrics.forPartition(cfg.ID)
	p.view = view{st: cfg.Store, done: p.done}
	p.state.init(p)
	go p.run()
	return p
}

// ID is the partition's id.
func (p *Partition) ID() uint32 { return p.cfg.ID }

// Range is the partition's slot range.
func (p *Partition) Range() keyspace.Range { return p.cfg.Range }

// Epoch is the partition's epoch.
func (p *Partition) Epoch() uint64 { return p.cfg.Epoch }

// Serving reports whether the partition has restored and serves.
func (p *Partition) Serving() bool { return p.serving.Load() }

// Upsert writes entries atomically and returns one result per entry once the
// transaction holding them has committed.
func (p *Partition) Upsert(ctx context.Context, entries []pipeline.Entry) ([]WriteResult, error) {
	r, err := p.call(ctx, &request{op: opUpsert, entries: entries})
	return r.results, err
}

// Get returns the key's value once every write before it is durable.
func (p *Partition) Get(ctx context.Context, key []byte) (store.Value, bool, error) {
	r, err := p.call(ctx, &request{op: opGet, key: key})
	return r.value, r.found, err
}

// Remove deletes the key; existed says whether it was there.
func (p *Partition) Remove(ctx context.Context, key []byte) (existed bool, res WriteResult, err error) {
	r, err := p.call(ctx, &request{op: opRemove, key: key})
	if len(r.results) > 0 {
		res = r.results[0]
	}
	return r.found, res, err
}

// Increment adds delta to key's decimal int64 value (a missing key is 0) and
// returns the new value once it is durable.
func (p *Partition) Increment(ctx context.Context, key []byte, delta int64) (int64, WriteResult, error) {
	r, err := p.call(ctx, &request{op: opIncrement, key: key, delta: delta})
	if err != nil {
		return 0, WriteResult{}, err
	}
	return r.counter, r.results[0], nil
}

// ReadCommitted reads key's committed value directly from the store, not
// through the inbox: what EVENTUAL and SESSION reads see. It never returns a
// value whose transaction has not committed. Safe from any goroutine.
func (p *Partition) ReadCommitted(key []byte) (store.Value, bool, error) {
	if !p.serving.Load() {
		return store.Value{}, false, p.unavailable()
	}
	return p.view.ReadCommitted(key)
}

// call hands req to the loop and waits on the caller's own context.
func (p *Partition) call(ctx context.Context, req *request) (reply, error) {
	if !p.serving.Load() {
		return reply{}, p.unavailable()
	}
	p.prefetch(req)
	req.reply = make(chan reply, 1)
	select {
	case p.inbox <- req:
	case <-p.done:
		return reply{}, ErrStopped
	default:
		return reply{}, ErrInboxFull
	}
	select {
	case r := <-req.reply:
		return r, r.err
	case <-ctx.Done():
		return reply{}, ctx.Err()
	case <-p.done:
		return reply{}, ErrStopped
	}
}

func (p *Partition) unavailable() error {
	select {
	case <-p.done:
		return ErrStopped
	case <-p.closing:
		return ErrStopped
	default:
		if d := p.deposed.Load(); d != nil {
			return *d
		}
		return &RestoringError{Partition: p.cfg.ID, Percent: int(p.progress.Load())}
	}
}

// Close stops the partition gracefully: it takes no more requests, fails the
// ones never appended (ErrStopped: safe to retry on the next owner), waits
// (up to 10 s) for the group in flight so its requests get their true
// outcome, then closes the appender and the store.
func (p *Partition) Close() error {
	p.once.Do(func() { close(p.closing) })
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
// try again": restoring, re-syncing, stopped, moved.
func IsUnavailable(err error) bool {
	var re *RestoringError
	return errors.As(err, &re) || errors.Is(err, ErrAppendFailed) || errors.Is(err, ErrStopped) || errors.Is(err, ErrDeposed)
}

// since is a small helper for latency metrics.
func since(t time.Time) float64 { return time.Since(t).Seconds() }

// Status is the partition's state as its node sees it.
type Status struct {
	Serving bool
	Deposed bool
	// Percent of the restore done, while restoring.
	Percent int
	// Lag is the changelog offsets left to replay while restoring.
	Lag int64
}

// Status reports the partition's state.
func (p *Partition) Status() Status {
	return Status{Serving: p.serving.Load(), Deposed: p.deposed.Load() != nil, Percent: int(p.progress.Load()), Lag: p.lag.Load()}
}

// Len counts the partition's committed keys (a scan: for the control plane).
func (p *Partition) Len() (int, error) { return p.cfg.Store.Len() }
