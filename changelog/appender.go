package changelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/kafkatxn"
	"github.com/sluicedb/sluice/topics"
	"github.com/sluicedb/sluice/wal"
)

// AppenderConfig configures a partition's changelog producer.
type AppenderConfig struct {
	// Client holds the connection options (seed brokers, TLS, SASL, logger).
	Client []kgo.Opt
	// Topics names the changelog, ingest (forwards) and DLQ topics.
	Topics topics.Names
	// TransactionalID is the partition's transactional id (Topics.TransactionalID).
	TransactionalID string
	// DeliveryTimeout bounds how long one Append may take before it fails.
	// Default 30s.
	DeliveryTimeout time.Duration
}

// Appender appends groups of change records, one Kafka transaction per group.
// It is used by one goroutine at a time.
type Appender struct {
	cl      *kgo.Client
	topics  topics.Names
	timeout time.Duration
	endTxns endTxnCounter
	watch   *kafkatxn.CommitWatch // sees franz-go abort a commit it was asked for
}

var _ wal.Appender = (*Appender)(nil)

// NewAppender creates the producer and initialises its producer id, which fences
// every older producer of the same transactional id and aborts its open
// transaction. When it returns, no zombie can commit under that id.
func NewAppender(ctx context.Context, cfg AppenderConfig) (*Appender, error) {
	if cfg.DeliveryTimeout == 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	a := &Appender{topics: cfg.Topics, timeout: cfg.DeliveryTimeout}
	opts := append([]kgo.Opt{
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(2 * cfg.DeliveryTimeout),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.ProducerBatchMaxBytes(topics.MaxRecordBytes),
		kgo.ProducerLinger(0),
		// A partition begins its next transaction as soon as one commits, often
		// before the coordinator has finished the last (CONCURRENT_TRANSACTIONS);
		// franz-go's default 20 ms retry backoff was then most of the wait.
		kgo.ConcurrentTransactionsBackoff(time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithHooks(&a.endTxns),
	}, cfg.Client...)
	watch, watchOpt, err := kafkatxn.WatchCommits(cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("changelog: producer %s: %w", cfg.TransactionalID, err)
	}
	cl, err := kgo.NewClient(append(opts, watchOpt)...)
	if err != nil {
		return nil, fmt.Errorf("changelog: producer %s: %w", cfg.TransactionalID, err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("changelog: init producer %s: %w", cfg.TransactionalID, err)
	}
	a.cl, a.watch = cl, watch
	return a, nil
}

// Fence fences every producer of the transactional id: InitProducerID bumps its
// epoch and aborts its open transaction. A new owner of a slot range fences
// every id that ever wrote an overlapping range this way before it replays.
func Fence(ctx context.Context, client []kgo.Opt, transactionalID string) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.TransactionalID(transactionalID)}, client...)...)
	if err != nil {
		return fmt.Errorf("changelog: fencing %s: %w", transactionalID, err)
	}
	defer cl.Close()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("changelog: fencing %s: %w", transactionalID, err)
	}
	return nil
}

// Append writes g in one transaction and returns once it has committed, with
// the offset of each of g.Records. An error wraps wal.ErrNotCommitted when
// nothing of g can have committed, else wal.ErrCommitUnknown; with
// wal.ErrPermanent too when sending the same records again cannot succeed.
//
// franz-go can abort a transaction it was asked to commit and return nil
// (kafkatxn/commitwatch.go; seen on a fresh producer's first transaction on
// a busy machine). Nothing of g committed then, and the client has the
// topic's metadata by now: g is sent again in a new transaction, up to
// abortedInsteadTries times, instead of failing the partition's requests
// and re-syncing it for a fault of the client library's.
func (a *Appender) Append(ctx context.Context, g *wal.Group) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*a.timeout)
	defer cancel()
	for try := 1; ; try++ {
		offsets, err := a.appendOnce(ctx, g)
		if !errors.Is(err, errAbortedInstead) || try == abortedInsteadTries {
			return offsets, err
		}
	}
}

// abortedInsteadTries bounds the transactions Append begins when franz-go
// keeps aborting its commits: each costs a round of requests, and a fault
// that repeats is the partition's to handle (it re-syncs).
const abortedInsteadTries = 3

var errAbortedInstead = fmt.Errorf("%w: franz-go aborted the transaction instead of committing it (see kafkatxn/commitwatch.go)", wal.ErrNotCommitted)

func (a *Appender) appendOnce(ctx context.Context, g *wal.Group) ([]int64, error) {
	recs := a.records(g)
	a.watch.Reset()
	if err := a.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("%w: begin transaction: %w", wal.ErrNotCommitted, err)
	}
	if err := a.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		// No commit was sent: the transaction is aborted here, or by the next
		// producer of this id, or when it times out.
		kind := wal.ErrNotCommitted
		if permanent(err) {
			kind = fmt.Errorf("%w (%w)", wal.ErrNotCommitted, wal.ErrPermanent)
		}
		return nil, errors.Join(fmt.Errorf("%w: produce: %w", kind, err), a.abort(ctx))
	}
	sent := a.endTxns.n.Load()
	if err := a.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		kind := wal.ErrCommitUnknown
		if refused(err, a.endTxns.n.Load()-sent) {
			kind = wal.ErrNotCommitted
		}
		return nil, errors.Join(fmt.Errorf("%w: commit: %w", kind, err), a.abort(ctx))
	}
	if a.watch.Aborted() {
		return nil, errAbortedInstead
	}
	offsets := make([]int64, len(g.Records))
	for i := range offsets {
		offsets[i] = recs[i].Offset
	}
	return offsets, nil
}

// records are the Kafka records of g: its changelog records first (in
// order: their offsets are Append's answer), then dead letters, then forwards.
func (a *Appender) records(g *wal.Group) []*kgo.Record {
	recs := make([]*kgo.Record, 0, len(g.Records)+len(g.DeadLetters)+len(g.Forwards))
	for _, r := range g.Records {
		recs = append(recs, Encode(a.topics.Changelog(), r))
	}
	for _, d := range g.DeadLetters {
		recs = append(recs, DeadLetter(a.topics.DLQ(), d))
	}
	for _, f := range g.Forwards {
		recs = append(recs, forward(a.topics.Ingest(), f))
	}
	return recs
}

// refused reports a commit the coordinator certainly did not carry out: no
// EndTxn request was sent, or exactly one was, and its answer refuses the
// commit (the producer was fenced, the transaction cannot commit). An answer
// to a retried EndTxn proves nothing: the first request may have committed
// before a new owner fenced this producer, and the retry then meets the
// fence.
func refused(err error, endTxnRequests int32) bool {
	if endTxnRequests == 0 {
		return true
	}
	if endTxnRequests > 1 {
		return false
	}
	for _, e := range []error{kerr.ProducerFenced, kerr.InvalidProducerEpoch, kerr.TransactionAbortable, kerr.InvalidTxnState, kerr.InvalidProducerIDMapping} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// permanent reports produce errors that the same records would meet again.
func permanent(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage, kerr.InvalidRequiredAcks} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (a *Appender) abort(ctx context.Context) error {
	if err := a.cl.AbortBufferedRecords(ctx); err != nil {
		return fmt.Errorf("changelog: abort buffered: %w", err)
	}
	if err := a.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("changelog: abort: %w", err)
	}
	return nil
}

// Close releases the producer. An open transaction is aborted by the broker
// when the next producer of the same id initialises, or when it times out.
func (a *Appender) Close() { a.cl.Close() }

// endTxnCounter counts the EndTxn requests the producer wrote to a broker, to
// tell a first answer (which is the truth) from a retry's.
type endTxnCounter struct{ n atomic.Int32 }

var _ kgo.HookBrokerWrite = (*endTxnCounter)(nil)

func (c *endTxnCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key == int16(kmsg.EndTxn) {
		c.n.Add(1)
	}
}

// HeaderForwardedFrom is set on an ingest record sluice moved to the slot that
// owns its key: "slot/offset" of where it was produced.
const HeaderForwardedFrom = "sluice-forwarded-from"

func forward(topic string, f wal.Forward) *kgo.Record {
	r := f.Record
	h := make([]kgo.RecordHeader, 0, len(r.Headers)+1)
	for _, x := range r.Headers {
		h = append(h, kgo.RecordHeader{Key: x.Key, Value: x.Value})
	}
	h = append(h, kgo.RecordHeader{Key: HeaderForwardedFrom, Value: []byte(strconv.Itoa(int(r.Slot)) + "/" + strconv.FormatInt(r.Offset, 10))})
	value := r.Value
	if r.Remove {
		value = nil
	}
	return &kgo.Record{Topic: topic, Partition: f.Slot, Key: r.Key, Value: value, Headers: h}
}
