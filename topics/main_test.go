package topics

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// setup creates a cluster's topics, slots partitions each, on the test broker.
func setup(t testing.TB, slots int32) (Names, []kgo.Opt, *kadm.Client) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	tp := Names{Cluster: kafkatest.ClusterName(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := EnsureAll(ctx, cl, tp, slots, 1)
	if err != nil || got != slots {
		t.Fatalf("EnsureAll = %d, %v", got, err)
	}
	return tp, opts, adm
}
