package changelog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// AppenderConfig configures a partition's changelog producer.
type AppenderConfig struct {
	// Client holds the connection options (seed brokers, TLS, logger).
	Client []kgo.Opt
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
	timeout time.Duration
}

// NewAppender creates the producer and initialises its producer id, which fences
// every older producer of the same transactional id and aborts its open
// transaction. When it returns, no zombie can commit to the partition's slots.
func NewAppender(ctx context.Context, cfg AppenderConfig) (*Appender, error) {
	if cfg.DeliveryTimeout == 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	opts := append([]kgo.Opt{
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(2 * cfg.DeliveryTimeout),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		kgo.ProducerLinger(0),
		// A partition begins its next transaction as soon as one commits, often
		// before the coordinator has finished the last (CONCURRENT_TRANSACTIONS);
		// franz-go's default 20 ms retry backoff was then most of the wait.
		kgo.ConcurrentTransactionsBackoff(time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, cfg.Client...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("changelog: producer %s: %w", cfg.TransactionalID, err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("changelog: init producer %s: %w", cfg.TransactionalID, err)
	}
	return &Appender{cl: cl, timeout: cfg.DeliveryTimeout}, nil
}

// Append writes recs in one transaction and returns once it has committed;
// each record's Offset is then set. An error wraps ErrNotCommitted when
// nothing of recs can have committed (the commit was never sent, or the
// coordinator refused it), else ErrCommitUnknown. Either way the caller must
// treat the records as not acknowledged and re-sync from the log.
func (a *Appender) Append(ctx context.Context, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, 2*a.timeout)
	defer cancel()
	if err := a.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin transaction: %w", ErrNotCommitted, err)
	}
	if err := a.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		// No commit was sent: the transaction is aborted here, or by the next
		// producer of this id, or when it times out.
		return errors.Join(fmt.Errorf("%w: produce: %w", ErrNotCommitted, err), a.abort(ctx))
	}
	if err := a.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		kind := ErrCommitUnknown
		if refused(err) {
			kind = ErrNotCommitted
		}
		return errors.Join(fmt.Errorf("%w: commit: %w", kind, err), a.abort(ctx))
	}
	return nil
}

// refused reports commit errors the coordinator answers without committing:
// the producer was fenced (a new owner's InitProducerID aborted the
// transaction) or the transaction cannot commit.
func refused(err error) bool {
	for _, e := range []error{kerr.ProducerFenced, kerr.InvalidProducerEpoch, kerr.TransactionAbortable, kerr.InvalidTxnState, kerr.InvalidProducerIDMapping, kerr.OperationNotAttempted} {
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
