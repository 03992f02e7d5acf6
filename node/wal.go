package node

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/ingest"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/wal"
)

// The Kafka changelog as the partitions' write-ahead log.

// changelogLog is partition spec's log in --wal kafka: the changelog. Its
// appender is the partition's transactional producer, made once every older
// writer of the slots is fenced (fencing.go).
func (n *Node) changelogLog(spec registry.Partition) wal.Log {
	return changelogLog{fenceOthers: n.fenceOthers(spec), own: n.ownAppender(spec), replay: n.replay(n.partitionLog(spec)), retention: n.retention}
}

type changelogLog struct {
	fenceOthers func(context.Context) error
	own         func(context.Context) (wal.Appender, error)
	replay      wal.ReplayFunc
	retention   time.Duration
}

// NewAppender fences the older partitions over the slots, then the
// partition's own transactional id.
func (c changelogLog) NewAppender(ctx context.Context) (wal.Appender, error) {
	if err := c.fenceOthers(ctx); err != nil {
		return nil, fmt.Errorf("fencing older writers of the slots: %w", err)
	}
	return c.own(ctx)
}

func (c changelogLog) Replay(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error, waiting func(string)) (map[int32]int64, error) {
	return c.replay(ctx, from, fn, waiting)
}

// Retention is the changelog's delete.retention.ms.
func (c changelogLog) Retention() time.Duration { return c.retention }

// opened is a log whose appenders newAppender makes: a mode's log under the
// ownership lease, the owner's announcement in the bucket, the cache's
// re-sync (modes.go, cache.go).
type opened struct {
	wal.Log
	newAppender func(context.Context) (wal.Appender, error)
}

func (o opened) NewAppender(ctx context.Context) (wal.Appender, error) { return o.newAppender(ctx) }

// newAppender returns the function that creates partition id's changelog
// producer (fencing the older ones of its transactional id).
func (n *Node) newAppender(id uint32) func(context.Context) (wal.Appender, error) {
	cfg := changelog.AppenderConfig{Client: n.kafkaOpts(), Topics: n.topics, TransactionalID: n.topics.TransactionalID(id)}
	return func(ctx context.Context) (wal.Appender, error) { return changelog.NewAppender(ctx, cfg) }
}

// replay reads the changelog's committed records from offsets to its end.
func (n *Node) replay(log zerolog.Logger) wal.ReplayFunc {
	opts, topic := n.kafkaOpts(), n.topics.Changelog()
	return func(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error, waiting func(string)) (map[int32]int64, error) {
		stalled := func(s *kafkaread.Stall) {
			if s == nil {
				waiting("")
			} else {
				waiting(s.String())
			}
		}
		return kafkaread.Replay(ctx, opts, topic, from, decoded(fn), kafkaread.WithLog(log), kafkaread.OnStall(stalled))
	}
}

// tail follows the changelog's committed records from offsets (a standby).
func (n *Node) tail() wal.TailFunc {
	opts, topic := n.kafkaOpts(), n.topics.Changelog()
	return func(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error) error {
		return kafkaread.Tail(ctx, opts, topic, from, decoded(fn))
	}
}

func decoded(fn func(wal.Replayed) error) func(kafkaread.Step) error {
	return func(b kafkaread.Step) error {
		db, err := changelog.Decoded(b)
		if err != nil {
			return err
		}
		return fn(db)
	}
}

// ingestSource is the partitions' source of ingest records: the ingest
// topic's consumer.
func (n *Node) ingestSource() partition.IngestSource {
	return ingestConsumer{cfg: ingest.Config{Client: n.kafkaOpts(), Topic: n.topics.Ingest(), Lag: n.ingestLag}}
}

// ingestConsumer consumes slots of the ingest topic (ingest.Consume).
type ingestConsumer struct{ cfg ingest.Config }

func (c ingestConsumer) Consume(ctx context.Context, from map[int32]int64, deliver func([]kv.IngestRecord) error) error {
	return ingest.Consume(ctx, c.cfg, from, deliver)
}
