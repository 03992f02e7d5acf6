package topics

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Names are a cluster's topic names: every topic is prefixed with the cluster name.
type Names struct {
	Cluster string
}

func (t Names) Changelog() string { return t.Cluster + ".changelog" }
func (t Names) Ingest() string    { return t.Cluster + ".ingest" }
func (t Names) DLQ() string       { return t.Cluster + ".ingest.dlq" }
func (t Names) Registry() string  { return t.Cluster + ".registry" }

// TransactionalID is the transactional id of a partition's changelog producer.
// A new owner's InitProducerID under it fences the old one.
func (t Names) TransactionalID(partition uint32) string {
	return t.Cluster + ".p" + strconv.FormatUint(uint64(partition), 10)
}

// EnsureAll creates the cluster's topics that are missing, with slots
// partitions each, and returns the slot count of the changelog as it exists
// (it wins over slots when the cluster was created before). Ensure tells more.
func EnsureAll(ctx context.Context, cl *kgo.Client, t Names, slots int32, replication int16) (int32, error) {
	st, err := Ensure(ctx, cl, t, slots, replication)
	return st.Slots, err
}

// Ensure describes the cluster's topics, creates only the missing ones (so an
// operator who created them needs no Create ACL; DescribeConfigs is needed)
// and reports the settings sluice depends on as the broker has them. The
// topics named in skip are left alone: a node that consumes no ingest
// (--wal disk, none) skips t.Ingest() and t.DLQ(), so that a producer to
// the ingest topic gets the broker's unknown-topic error instead of an
// acknowledgement for records nothing will ever read.
func Ensure(ctx context.Context, cl *kgo.Client, t Names, slots int32, replication int16, skip ...string) (State, error) {
	adm := kadm.NewClient(cl)
	specs := slices.DeleteFunc(topicSpecs(t, slots), func(s topicSpec) bool { return slices.Contains(skip, s.name) })
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	found, err := describeTopics(ctx, adm, names, false)
	if err != nil {
		return State{}, err
	}
	var st State
	for _, s := range specs {
		if _, ok := found[s.name]; ok {
			continue
		}
		configs := make(map[string]*string, len(s.needs))
		for _, n := range s.needs {
			configs[n.key] = kadm.StringPtr(n.want)
		}
		_, err := adm.CreateTopic(ctx, s.partitions, replication, configs, s.name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return State{}, fmt.Errorf("topics: creating topic %s: %w", s.name, err)
		}
		if err == nil {
			st.Created = append(st.Created, s.name)
		}
	}
	if len(found) < len(specs) { // read what was just created (by us or a peer)
		if found, err = describeTopics(ctx, adm, names, true); err != nil {
			return State{}, err
		}
	}
	for _, s := range specs {
		st.Mismatches = append(st.Mismatches, s.check(found[s.name])...)
	}
	st.Retention = defaultDeleteRetention
	if v, ok := found[t.Changelog()]["delete.retention.ms"]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return State{}, fmt.Errorf("topics: %s has delete.retention.ms %q, not a duration in ms", t.Changelog(), v)
		}
		st.Retention = time.Duration(ms) * time.Millisecond
	}
	st.Slots, err = partitionCount(ctx, cl, t.Changelog())
	return st, err
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
			return 0, fmt.Errorf("topics: describing %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("topics: describing %s: %w (%w)", topic, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
