package node

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/ingest"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// The Kafka changelog as the partitions' write-ahead log.

// newAppender returns the function that creates partition id's changelog
// producer (fencing the older ones of its transactional id).
func (n *Node) newAppender(id uint32) func(context.Context) (wal.Appender, error) {
	cfg := changelog.AppenderConfig{Client: n.kafkaOpts(), Topics: n.topics, TransactionalID: n.topics.TransactionalID(id)}
	return func(ctx context.Context) (wal.Appender, error) { return changelog.NewAppender(ctx, cfg) }
}

// replay reads the changelog's committed records from offsets to its end.
func (n *Node) replay(log zerolog.Logger) wal.ReplayFunc {
	opts, topic := n.kafkaOpts(), n.topics.Changelog()
	return func(ctx context.Context, from map[int32]int64, fn func(wal.Batch) error, waiting func(string)) (map[int32]int64, error) {
		stalled := func(s *changelog.Stall) {
			if s == nil {
				waiting("")
			} else {
				waiting(s.String())
			}
		}
		return changelog.Replay(ctx, opts, topic, from, decoded(fn), changelog.WithLog(log), changelog.OnStall(stalled))
	}
}

// tail follows the changelog's committed records from offsets (a standby).
func (n *Node) tail() wal.TailFunc {
	opts, topic := n.kafkaOpts(), n.topics.Changelog()
	return func(ctx context.Context, from map[int32]int64, fn func(wal.Batch) error) error {
		return changelog.Tail(ctx, opts, topic, from, decoded(fn))
	}
}

func decoded(fn func(wal.Batch) error) func(changelog.Batch) error {
	return func(b changelog.Batch) error {
		db, err := changelog.Decoded(b)
		if err != nil {
			return err
		}
		return fn(db)
	}
}

// consumeIngest consumes the given slots of the ingest topic.
func (n *Node) consumeIngest() func(ctx context.Context, from map[int32]int64, deliver func([]kv.IngestRecord) error) error {
	cfg := ingest.Config{Client: n.kafkaOpts(), Topic: n.topics.Ingest(), Lag: n.ingestLag}
	return func(ctx context.Context, from map[int32]int64, deliver func([]kv.IngestRecord) error) error {
		return ingest.Consume(ctx, cfg, from, deliver)
	}
}
