package topics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

// Names that exist are described, never created again: an operator who
// created them need not grant sluice the Create ACL.
func TestEnsureTopicsCreatesOnlyWhatIsMissing(t *testing.T) {
	c, cl := kafkatest.Fake(t)
	var creates atomic.Int32
	c.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		creates.Add(int32(len(req.(*kmsg.CreateTopicsRequest).Topics)))
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tp := Names{Cluster: "once"}
	if _, err := EnsureAll(ctx, cl, tp, 4, 1); err != nil {
		t.Fatal(err)
	}
	if n := creates.Load(); n != 4 {
		t.Fatalf("the first start asked to create %d topics, want 4", n)
	}
	creates.Store(0)
	if got, err := EnsureAll(ctx, cl, tp, 4, 1); err != nil || got != 4 {
		t.Fatalf("second EnsureAll = %d, %v", got, err)
	}
	if n := creates.Load(); n != 0 {
		t.Fatalf("a start with every topic there asked to create %d topics, want none", n)
	}
}

// Ensure reads the changelog's delete.retention.ms (and the settings sluice
// depends on) from the broker and reports, for a topic an operator created,
// each setting that falls short, naming what it found and what is needed.
func TestEnsureReportsTheBrokersSettings(t *testing.T) {
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tp := Names{Cluster: kafkatest.ClusterName(t)}
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 2, 1, map[string]*string{
		"cleanup.policy":      kadm.StringPtr("compact,delete"),
		"delete.retention.ms": kadm.StringPtr("60000"),
		"max.message.bytes":   kadm.StringPtr("1000000"),
	}, tp.Changelog())
	if err != nil {
		t.Fatal(err)
	}
	st, err := Ensure(ctx, cl, tp, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Slots != 2 || st.Retention != time.Minute {
		t.Fatalf("Ensure found %d slots and a retention of %s, want the topic's 2 and 1m0s", st.Slots, st.Retention)
	}
	slices.Sort(st.Created)
	if want := []string{tp.Ingest(), tp.DLQ(), tp.Registry()}; fmt.Sprint(st.Created) != fmt.Sprint(sortedCopy(want)) {
		t.Fatalf("created %v, want only the missing %v", st.Created, want)
	}
	want := map[string][2]string{
		"cleanup.policy":      {"compact,delete", "compact"},
		"delete.retention.ms": {"60000", "at least " + strconv.FormatInt(DeleteRetention.Milliseconds(), 10)},
		"max.message.bytes":   {"1000000", "at least " + strconv.Itoa(MaxRecordBytes+64<<10)},
	}
	for _, m := range st.Mismatches {
		w, ok := want[m.Setting]
		if m.Topic != tp.Changelog() || !ok || m.Found != w[0] || m.Want != w[1] || m.Why == "" {
			t.Errorf("unexpected mismatch %s", m)
		}
		delete(want, m.Setting)
	}
	if len(want) > 0 {
		t.Errorf("mismatches not reported: %v (reported: %v)", want, st.Mismatches)
	}

	// The topics sluice created need nothing.
	again, err := Ensure(ctx, cl, Names{Cluster: tp.Cluster + "-fresh"}, 4, 1)
	if err != nil || len(again.Mismatches) != 0 || again.Retention != DeleteRetention || len(again.Created) != 4 {
		t.Fatalf("fresh topics: %+v %v", again, err)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestEnsureTopicsIsIdempotentAndKeepsSlotCount(t *testing.T) {
	tp, opts, adm := setup(t, 4)
	ctx := context.Background()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := EnsureAll(ctx, cl, tp, 16, 1) // the existing topic wins
	if err != nil || got != 4 {
		t.Fatalf("second EnsureAll = %d, %v", got, err)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, tp.Changelog())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(tp.Changelog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cleanup.policy": "compact", "max.message.bytes": fmt.Sprint(MaxRecordBytes + 64<<10)}
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("%s = %s, want %s", c.Key, c.MaybeValue(), w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("configs missing: %v", want)
	}
}

// A broker whose metadata does not know a just-created topic yet answers
// UNKNOWN_TOPIC_OR_PARTITION for a moment: EnsureAll asks again instead of
// failing the node's start.
func TestEnsureTopicsWaitsForMetadataOfNewTopics(t *testing.T) {
	c, cl := kafkatest.Fake(t)
	tp := Names{Cluster: "lagging"}
	var unknown atomic.Int32 // the cluster's goroutine counts down, the test reads
	unknown.Store(3)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		m := req.(*kmsg.MetadataRequest)
		if unknown.Load() == 0 || len(m.Topics) != 1 || m.Topics[0].Topic == nil || *m.Topics[0].Topic != tp.Changelog() {
			return nil, nil, false
		}
		unknown.Add(-1)
		resp := m.ResponseKind().(*kmsg.MetadataResponse)
		st := kmsg.NewMetadataResponseTopic()
		st.Topic = kmsg.StringPtr(tp.Changelog())
		st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := EnsureAll(ctx, cl, tp, 4, 1)
	if err != nil || got != 4 {
		t.Fatalf("EnsureAll = %d, %v; want 4 slots once the topic is known", got, err)
	}
	if n := unknown.Load(); n != 0 {
		t.Fatalf("%d UNKNOWN_TOPIC_OR_PARTITION answers were never asked for", n)
	}
}
