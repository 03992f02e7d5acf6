package node

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The embedded broker never compacts its log (kfake's compaction moves a
// slot's log start, and a partition replaying the slot from before it would
// refuse to start), and compacts pids.log seldom (the crash repair counts
// its endtx entries).
func TestEmbeddedBrokerNeverCompacts(t *testing.T) {
	n := startNode(t, Config{Brokers: []string{}, EmbeddedKafkaAddr: "127.0.0.1:0", Cluster: "embedded"})
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfgs, err := kadm.NewClient(cl).DescribeBrokerConfigs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
	}
	for k, want := range embeddedBrokerConfigs {
		if got[k] != want {
			t.Errorf("%s = %q, want %s", k, got[k], want)
		}
	}
}
