package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The data plane's read side is tested through a whole node in this
// process, against real Kafka.
func TestMain(m *testing.M) { kafkatest.Main(m) }

type testNode struct {
	*node.Node
	data sluicev1.DataClient
	cl   *client.Client
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	return startNodeOf(t, kafkatest.ClusterName(t))
}

// startNodeOf starts a node of cluster (its topics made if missing).
func startNodeOf(t *testing.T, cluster string) *testNode {
	t.Helper()
	cfg := node.Config{Brokers: kafkatest.Brokers(t), Cluster: cluster, DataDir: t.TempDir(),
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "test-token", HTTPAddr: "-",
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("node not ready in 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient(n.DataAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cl, err := client.New(n.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return &testNode{Node: n, data: sluicev1.NewDataClient(conn), cl: cl}
}

// wireSession is the Go client's session token as the data API's message,
// for the tests that call the API directly.
func wireSession(s *client.Session) *sluicev1.Session {
	return &sluicev1.Session{Offsets: s.Offsets, Cluster: s.Cluster}
}
