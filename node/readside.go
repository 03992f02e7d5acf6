package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/server"
	"github.com/sluicedb/sluice/wal"
)

// What the data plane's read side needs from Kafka: the cluster's identity
// for its tokens, and the changelog for Watch.

// clusterIdentity names the cluster in session and page tokens: its name and
// its changelog topic's Kafka id, so that two clusters of the same name (on
// two Kafka clusters, or one deleted and created again) tell their tokens
// apart. If the id cannot be read, the name alone (logged).
func (n *Node) clusterIdentity() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := n.changelogTopicID(ctx)
	if err != nil {
		n.cfg.Log.Warn().Err(err).Msg("reading the changelog topic's id: tokens name the cluster by its name only")
		return n.cfg.Cluster
	}
	return n.cfg.Cluster + "/" + hex.EncodeToString(id[:])
}

func (n *Node) changelogTopicID(ctx context.Context) (kadm.TopicID, error) {
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		return kadm.TopicID{}, err
	}
	defer cl.Close()
	topic := n.topics.Changelog()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicID{}, err
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return kadm.TopicID{}, fmt.Errorf("topic %s: %v", topic, d.Err)
	}
	if d.ID == (kadm.TopicID{}) {
		return kadm.TopicID{}, fmt.Errorf("the broker gives topic %s no id", topic)
	}
	return d.ID, nil
}

// watchLog is the changelog as Watch reads it.
type watchLog struct {
	opts      []kgo.Opt
	topic     string
	retention time.Duration
}

// watchFetchBytes bounds what one watch holds of the changelog: one fetch's
// answer and the records of one step (a broker still answers with a first
// batch over it).
const watchFetchBytes = 1 << 20

func (n *Node) watchLog() server.Changelog {
	if n.cfg.WAL != WALKafka {
		return nil
	}
	return watchLog{opts: n.kafkaOpts(), topic: n.topics.Changelog(), retention: n.retention}
}

// watchRefused says why this node's mode cannot serve Watch, if it cannot:
// the local write-ahead logs never write the changelog topic a watch reads
// (issue 23.3: a watch was accepted and never delivered a change).
func (n *Node) watchRefused() string {
	if n.cfg.WAL == WALKafka {
		return ""
	}
	return fmt.Sprintf("Watch needs --wal kafka: this node runs --wal %s, whose changes are never written to the changelog a watch reads", n.cfg.WAL)
}

func (w watchLog) Retention() time.Duration { return w.retention }

func (w watchLog) Bounds(ctx context.Context) (server.LogBounds, error) {
	cl, err := kgo.NewClient(w.opts...)
	if err != nil {
		return server.LogBounds{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	b := server.LogBounds{}
	for _, l := range []struct {
		list func(context.Context, ...string) (kadm.ListedOffsets, error)
		into *map[int32]int64
	}{{adm.ListStartOffsets, &b.Start}, {adm.ListCommittedOffsets, &b.Stable}, {adm.ListEndOffsets, &b.End}} {
		listed, err := l.list(ctx, w.topic)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return server.LogBounds{}, fmt.Errorf("listing offsets of %s: %w", w.topic, err)
		}
		m := map[int32]int64{}
		listed.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
		*l.into = m
	}
	return b, nil
}

func (w watchLog) OffsetsAfter(ctx context.Context, t time.Time) (map[int32]int64, error) {
	cl, err := kgo.NewClient(w.opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	after, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), w.topic)
	if err == nil {
		err = after.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListEndOffsets(ctx, w.topic)
		if err == nil {
			err = ends.Error()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s after %s: %w", w.topic, t.Format(time.RFC3339), err)
	}
	m := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	after.Each(func(o kadm.ListedOffset) {
		if o.Offset >= 0 { // -1: no record that young
			m[o.Partition] = min(m[o.Partition], o.Offset)
		}
	})
	return m, nil
}

// Tail reads with small fetches: a watch holds at most one fetch of
// buffered records while its client is slow, and a node serves many.
func (w watchLog) Tail(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error) error {
	return kafkaread.Tail(ctx, w.opts, w.topic, from, decoded(fn), kafkaread.FetchMaxBytes(watchFetchBytes))
}
