package changelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MaxRecordBytes bounds one change record (a 1 MiB value, its key and header)
// and so the topics' max.message.bytes and the producer's batch size.
const MaxRecordBytes = 4 << 20

// Topics names a cluster's topics: every topic is prefixed with the cluster name.
type Topics struct {
	Cluster string
}

func (t Topics) Changelog() string { return t.Cluster + ".changelog" }
func (t Topics) Ingest() string    { return t.Cluster + ".ingest" }
func (t Topics) DLQ() string       { return t.Cluster + ".ingest.dlq" }
func (t Topics) Registry() string  { return t.Cluster + ".registry" }

// TransactionalID is the transactional id of a partition's changelog producer.
// A new owner's InitProducerID under it fences the old one.
func (t Topics) TransactionalID(partition uint32) string {
	return t.Cluster + ".p" + strconv.FormatUint(uint64(partition), 10)
}

// EnsureTopics creates the cluster's topics that are missing, with slots
// partitions each, and returns the slot count of the changelog as it exists
// (it wins over slots when the cluster was created before).
func EnsureTopics(ctx context.Context, cl *kgo.Client, t Topics, slots int32, replication int16) (int32, error) {
	adm := kadm.NewClient(cl)
	maxBytes := strconv.Itoa(MaxRecordBytes + 64<<10)
	specs := []struct {
		name       string
		partitions int32
		configs    map[string]*string
	}{
		{t.Changelog(), slots, map[string]*string{
			"cleanup.policy":    kadm.StringPtr("compact"),
			"max.message.bytes": kadm.StringPtr(maxBytes),
			// Tombstones must outlive any snapshot a restore may start from.
			"delete.retention.ms": kadm.StringPtr(strconv.Itoa(7 * 24 * 3600 * 1000)),
		}},
		{t.Ingest(), slots, map[string]*string{
			"cleanup.policy":    kadm.StringPtr("delete"),
			"max.message.bytes": kadm.StringPtr(maxBytes),
		}},
		{t.DLQ(), 1, map[string]*string{
			"cleanup.policy":    kadm.StringPtr("delete"),
			"max.message.bytes": kadm.StringPtr(maxBytes),
		}},
		{t.Registry(), 1, map[string]*string{
			"cleanup.policy": kadm.StringPtr("compact"),
		}},
	}
	for _, s := range specs {
		_, err := adm.CreateTopic(ctx, s.partitions, replication, s.configs, s.name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("changelog: creating topic %s: %w", s.name, err)
		}
	}
	return partitionCount(ctx, cl, t.Changelog())
}

// partitionCount is topic's partition count, from a broker's metadata. A
// topic created a moment ago may not be in every broker's metadata yet
// (UNKNOWN_TOPIC_OR_PARTITION): that is asked again until ctx ends. The
// request goes to a broker each time: kadm's metadata calls would answer
// from the client's cache, which keeps such an error for MetadataMinAge (5 s).
func partitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.UnknownTopicOrPartition
			for _, rt := range resp.Topics {
				if rt.Topic == nil || *rt.Topic != topic {
					continue
				}
				err = kerr.ErrorForCode(rt.ErrorCode)
				if err == nil && len(rt.Partitions) == 0 {
					err = kerr.LeaderNotAvailable
				}
				if err == nil {
					return int32(len(rt.Partitions)), nil
				}
			}
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) {
			return 0, fmt.Errorf("changelog: describing %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("changelog: describing %s: %w (%w)", topic, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
