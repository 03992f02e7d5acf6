package changelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
func EnsureTopics(ctx context.Context, adm *kadm.Client, t Topics, slots int32, replication int16) (int32, error) {
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
	details, err := adm.ListTopics(ctx, t.Changelog())
	if err != nil {
		return 0, fmt.Errorf("changelog: describing %s: %w", t.Changelog(), err)
	}
	d, ok := details[t.Changelog()]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("changelog: describing %s: %v", t.Changelog(), d.Err)
	}
	return int32(len(d.Partitions)), nil
}
