package node

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A node of --wal disk or none consumes no ingest (its partitions' log is
// local, and an ingest offset is kept with the changelog's). It therefore
// neither creates <cluster>.ingest nor its dead-letter topic: a collector
// pointed at it gets the broker's UNKNOWN_TOPIC_OR_PARTITION, where it used
// to get an acknowledgement for records nothing would ever read. (A real
// Kafka with auto.create.topics.enable creates the topic at the first
// produce: turn that off, as the README says.)

// noIngestTopics are the topics the node's storage mode does not use.
func (n *Node) noIngestTopics() []string {
	if n.cfg.WAL == WALKafka {
		return nil
	}
	return []string{n.topics.Ingest(), n.topics.DLQ()}
}

// withoutSkipped is topics less those the node's mode does not use.
func (n *Node) withoutSkipped(topics ...string) []string {
	skip := n.noIngestTopics()
	return slices.DeleteFunc(topics, func(t string) bool { return slices.Contains(skip, t) })
}

// warnStaleIngest says, in a mode without ingest, that an ingest topic
// exists all the same (made by an earlier run in --wal kafka, or by another
// node of the cluster): what is produced to it is not applied by this node.
func (n *Node) warnStaleIngest(ctx context.Context, cl *kgo.Client) {
	if n.cfg.WAL == WALKafka {
		return
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx, n.topics.Ingest())
	if err != nil || !topics.Has(n.topics.Ingest()) {
		return
	}
	n.cfg.Log.Warn().Str("topic", n.topics.Ingest()).Str("wal", n.cfg.WAL).
		Msg("the ingest topic exists, but a node of this --wal consumes no ingest: records produced to it are not applied here (delete the topic, or run --wal kafka)")
}
