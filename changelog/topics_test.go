package changelog

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

// Topics that exist are described, never created again: an operator who
// created them need not grant sluice the Create ACL.
func TestEnsureTopicsCreatesOnlyWhatIsMissing(t *testing.T) {
	c, cl := kfakeClient(t)
	var creates atomic.Int32
	c.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		creates.Add(int32(len(req.(*kmsg.CreateTopicsRequest).Topics)))
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tp := Topics{Cluster: "once"}
	if _, err := EnsureTopics(ctx, cl, tp, 4, 1); err != nil {
		t.Fatal(err)
	}
	if n := creates.Load(); n != 4 {
		t.Fatalf("the first start asked to create %d topics, want 4", n)
	}
	creates.Store(0)
	if got, err := EnsureTopics(ctx, cl, tp, 4, 1); err != nil || got != 4 {
		t.Fatalf("second EnsureTopics = %d, %v", got, err)
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
	tp := Topics{Cluster: kafkatest.ClusterName(t)}
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
	again, err := Ensure(ctx, cl, Topics{Cluster: tp.Cluster + "-fresh"}, 4, 1)
	if err != nil || len(again.Mismatches) != 0 || again.Retention != DeleteRetention || len(again.Created) != 4 {
		t.Fatalf("fresh topics: %+v %v", again, err)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
