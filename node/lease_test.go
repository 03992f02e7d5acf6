package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A --wal disk owner cut off from Kafka (the registry's end cannot be
// read) but not from its clients cannot confirm it still owns its
// partitions: once its lease runs out it acknowledges no write and answers
// no read, and it serves again once it can confirm. (The embedded broker
// refuses the node's ListOffsets: the registry's end.)
func TestLocalLogOwnerCutOffFromTheRegistryStopsServing(t *testing.T) {
	n := startNode(t, Config{Brokers: []string{}, EmbeddedKafkaAddr: "127.0.0.1:0", Cluster: "cutoff", WAL: WALDisk})
	ctx := context.Background()
	if _, err := n.data.Upsert(ctx, upsert("k", "before")); err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	n.embedded.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.embedded.KeepControl()
		if cut.Load() {
			return nil, errors.New("cut off"), true // the connection closes
		}
		return nil, nil, false
	})
	cut.Store(true)
	call := func(timeout time.Duration, f func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return f(ctx)
	}
	write := func(ctx context.Context) error { _, err := n.data.Upsert(ctx, upsert("k", "during")); return err }
	read := func(ctx context.Context) error {
		_, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("k")})
		return err
	}
	// The lease runs out: from then on every write and read is refused.
	deadline := time.Now().Add(60 * time.Second)
	for call(30*time.Second, write) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the owner, cut off from the registry, acknowledged writes for 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		if err := call(30*time.Second, write); err == nil || status.Code(err) == codes.OK {
			t.Fatalf("write %d past the lease was acknowledged", i)
		}
		if err := call(30*time.Second, read); err == nil {
			t.Fatalf("read %d past the lease was answered", i)
		}
	}
	cut.Store(false)
	deadline = time.Now().Add(60 * time.Second)
	for {
		err := call(30*time.Second, write)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owner, back in touch with the registry, still refuses writes: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("k")}); err != nil || string(got.Value) != "during" {
		t.Fatalf("after the cut: %+v %v", got, err)
	}
}
