package node

import (
	"sync"
	"testing"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

// Nodes of one cluster started at the same moment (docker compose starts
// its nodes together) all start: their registry writes fence each other's
// transactions, and a start whose write failed without the rules refusing
// it writes again (Kafka 4.1 answered one such EndTxn with
// UNKNOWN_SERVER_ERROR, which used to end the node's start).
func TestNodesStartedTogetherAllStart(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	brokers := kafkatest.Brokers(t)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := Config{NodeID: "n" + string(rune('1'+i)), Cluster: cluster, Brokers: brokers, DataDir: t.TempDir(),
				DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "test-token", HTTPAddr: "-"}
			nd, err := Start(t.Context(), cfg)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { nd.Close() })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("n%d did not start: %v", i+1, err)
		}
	}
}
