package topics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DeleteRetention is the delete.retention.ms sluice gives the changelog: how
// long compaction keeps a tombstone. A snapshot, or a store, older than the
// topic's actual setting may miss removals the log no longer holds, so a
// restore refuses it (see State.Retention).
const DeleteRetention = 7 * 24 * time.Hour

// defaultDeleteRetention is Kafka's default delete.retention.ms, assumed when
// a broker does not report the setting.
const defaultDeleteRetention = 24 * time.Hour

// State is what Ensure found on the broker.
type State struct {
	// Slots is the changelog's partition count.
	Slots int32
	// Retention is the changelog's delete.retention.ms as the broker has it:
	// a replay from a point older than this may miss removals.
	Retention time.Duration
	// Created are the topics Ensure created.
	Created []string
	// Mismatches are settings that fall short of what sluice needs.
	Mismatches []Mismatch
}

// Mismatch is a topic setting that is not what sluice needs.
type Mismatch struct {
	Topic, Setting string
	// Found is the broker's value; Want the one sluice needs.
	Found, Want string
	// Why is what goes wrong with Found.
	Why string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("topic %s has %s=%s, sluice needs %s: %s", m.Topic, m.Setting, m.Found, m.Want, m.Why)
}

// topicSpec is a topic sluice uses and the settings it needs.
type topicSpec struct {
	name       string
	partitions int32
	needs      []need
}

// need is one setting: the value sluice creates the topic with, and whether
// a value found on an existing topic serves as well.
type need struct {
	key, want string
	// atLeast: any number >= want serves; otherwise only want itself.
	atLeast bool
	why     string
}

func topicSpecs(t Names, slots int32) []topicSpec {
	maxBytes := need{key: "max.message.bytes", want: strconv.Itoa(MaxRecordBytes + 64<<10), atLeast: true,
		why: "a write of a 1 MiB value (or a group of them) is refused by the broker"}
	return []topicSpec{
		{t.Changelog(), slots, []need{
			{key: "cleanup.policy", want: "compact", why: "the log must keep every key's latest change for ever; delete drops acknowledged writes"},
			maxBytes,
			{key: "delete.retention.ms", want: strconv.FormatInt(DeleteRetention.Milliseconds(), 10), atLeast: true,
				why: "a snapshot or a store older than this is refused at restore (its removals may be compacted away), so restores fall back to longer replays"},
		}},
		{t.Ingest(), slots, []need{
			{key: "cleanup.policy", want: "delete", why: "compaction may drop an ingest record before it is consumed"},
			maxBytes,
		}},
		{t.DLQ(), 1, []need{
			{key: "cleanup.policy", want: "delete", why: "compaction drops dead letters of the same key"},
			maxBytes,
		}},
		{t.Registry(), 1, []need{
			{key: "cleanup.policy", want: "compact", why: "the registry must keep every partition's and node's latest entry for ever"},
		}},
	}
}

// check compares a topic's settings with what sluice needs.
func (s topicSpec) check(configs map[string]string) []Mismatch {
	var out []Mismatch
	for _, n := range s.needs {
		found, ok := configs[n.key]
		if ok && n.serves(found) {
			continue
		}
		if !ok {
			found = "(not reported)"
		}
		want := n.want
		if n.atLeast {
			want = "at least " + want
		}
		out = append(out, Mismatch{Topic: s.name, Setting: n.key, Found: found, Want: want, Why: n.why})
	}
	return out
}

func (n need) serves(found string) bool {
	if !n.atLeast {
		return strings.TrimSpace(found) == n.want
	}
	f, err1 := strconv.ParseInt(found, 10, 64)
	w, err2 := strconv.ParseInt(n.want, 10, 64)
	return err1 == nil && err2 == nil && f >= w
}

// describeTopics returns the settings of the named topics that exist. With
// wait, a topic not known yet (just created: not in every broker's metadata)
// is asked for again until ctx ends.
func describeTopics(ctx context.Context, adm *kadm.Client, names []string, wait bool) (map[string]map[string]string, error) {
	for {
		found, missing, err := describeOnce(ctx, adm, names)
		if err != nil || !wait || len(missing) == 0 {
			return found, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("topics: describing %s: %w (%w)", strings.Join(missing, ", "), kerr.UnknownTopicOrPartition, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func describeOnce(ctx context.Context, adm *kadm.Client, names []string) (map[string]map[string]string, []string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, nil, fmt.Errorf("topics: describing the settings of %s: %w", strings.Join(names, ", "), err)
	}
	found := make(map[string]map[string]string, len(names))
	var missing []string
	for _, name := range names {
		rc, err := rcs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			missing = append(missing, name)
			continue
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			return nil, nil, fmt.Errorf("topics: describing the settings of %s: %w (grant sluice's principal DescribeConfigs on the topic)", name, err)
		case err != nil:
			return nil, nil, fmt.Errorf("topics: describing the settings of %s: %w", name, err)
		}
		configs := make(map[string]string, len(rc.Configs))
		for _, c := range rc.Configs {
			if c.Value != nil {
				configs[c.Key] = *c.Value
			}
		}
		found[name] = configs
	}
	return found, missing, nil
}
