package integration

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// --wal disk and none have no Kafka transaction to fence a deposed owner:
// the ownership lease, renewed against the registry, does. Pause the owner
// (SIGSTOP), move its partition, write a new value through the new owner,
// then resume the old one with writes and reads already queued in its
// socket: it acknowledges none of the writes (the new owner would never
// have them) and answers no read with the value the new owner replaced.
func TestDiskOwnerPausedThroughAMoveAcknowledgesNothing(t *testing.T) {
	for _, wal := range []string{"disk", "none"} {
		t.Run(wal, func(t *testing.T) { pausedThroughAMove(t, wal) })
	}
}

func pausedThroughAMove(t *testing.T, wal string) {
	c := startCluster(t, "--wal", wal, "--snapshot-url", "file://"+t.TempDir(), "--handoff-timeout", "2s")
	ctx := context.Background()
	n1 := c.nodes["n1"]
	routes, err := dataClient(t, n1.addr).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	key := keyIn(0, 4, routes.Slots) // partition 1, on n1
	old := dataClient(t, n1.addr)
	if _, err := old.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: key, Value: []byte("old")}}}); err != nil {
		t.Fatal(err)
	}
	n1.signal(syscall.SIGSTOP)
	if _, err := c.control("n2").MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"}); err != nil {
		n1.signal(syscall.SIGCONT)
		t.Fatal(err)
	}
	cl, err := client.New(c.nodes["n2"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eventually(t, 120*time.Second, func() error {
		_, err := cl.Upsert(ctx, client.Entry{Key: key, Value: []byte("new")})
		return err
	})
	type answer struct {
		what, key string
		err       error
	}
	answers := make(chan answer, 64)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			resp, err := old.Get(callCtx, &sluicev1.GetRequest{Key: key})
			if err != nil {
				answers <- answer{"get", string(key), err}
				return
			}
			answers <- answer{"get", string(resp.Value), nil}
		}()
		go func() {
			defer wg.Done()
			k := keyInPartition(fmt.Sprint("late-", i), 0, 4, routes.Slots)
			callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := old.Upsert(callCtx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: k, Value: k}}})
			answers <- answer{"upsert", string(k), err}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the calls wait in the paused node's socket
	n1.signal(syscall.SIGCONT)
	wg.Wait()
	close(answers)
	seen := map[string]int{}
	for a := range answers {
		switch {
		case a.what == "get" && a.err == nil && a.key == "old":
			t.Errorf("the deposed owner answered a read with the value the new owner replaced")
		case a.what == "upsert" && a.err == nil:
			t.Errorf("the deposed owner acknowledged %s after the move", a.key)
		}
		code := "OK"
		if a.err != nil {
			code = status.Code(a.err).String()
		}
		seen[a.what+" "+code]++
	}
	t.Logf("calls at the deposed owner: %v", seen)
}

// keyInPartition is a key with prefix in slots [from, to).
func keyInPartition(prefix string, from, to, slots int32) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "%s-%d", prefix, i)
		if s := keyspace.Slot(k, slots); s >= from && s < to {
			return k
		}
	}
}
