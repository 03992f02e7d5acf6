package resp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
)

// A node that stops gracefully answers the commands it runs, refuses the
// ones after with an error saying so (nothing applied), closes the
// connection, and every SET it acknowledged is there after a restart.
func TestGracefulStopAnswersWhatItRuns(t *testing.T) {
	cluster, dir := kafkatest.ClusterName(t), t.TempDir()
	n := startNode(t, node.Config{Cluster: cluster, DataDir: dir})
	r := dialRaw(t, n.RESPAddr())
	const sets = 3000
	var cmds []byte
	for i := range sets {
		cmds = append(cmds, command("SET", fmt.Sprint("k", i), fmt.Sprint(i))...)
	}
	go r.c.Write(cmds)
	if got := r.reply(); got != "OK" {
		t.Fatalf("the first SET: %v", got)
	}
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	acked, refused := 1, 0
	for {
		_ = r.c.SetReadDeadline(deadline())
		v, err := readReply(r.r)
		if err != nil {
			break // closed
		}
		switch {
		case v == "OK" && refused == 0:
			acked++
		case v == respError("ERR sluice: node n1 is shutting down; the command was not run: connect to another node"):
			refused++
		default:
			t.Fatalf("answer %d while stopping: %v (after %d refused)", acked+refused, v, refused)
		}
	}
	<-closed
	t.Logf("%d SETs acknowledged, %d refused as the node stopped", acked, refused)
	if acked+refused > sets || refused > 1 {
		t.Fatalf("%d acknowledged and %d refused of %d: after its refusal the connection should close", acked, refused, sets)
	}
	n = startNode(t, node.Config{Cluster: cluster, DataDir: dir})
	rdb := newClient(t, n)
	for i := range acked {
		if got, err := rdb.Get(context.Background(), fmt.Sprint("k", i)).Result(); err != nil || got != fmt.Sprint(i) {
			t.Fatalf("k%d, acknowledged before the stop: %q %v after a restart", i, got, err)
		}
	}
}

func deadline() time.Time { return time.Now().Add(60 * time.Second) }
