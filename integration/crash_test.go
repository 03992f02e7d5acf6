package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// batch is one Upsert of unique keys. After a crash an acknowledged batch is
// all there; an unacknowledged one is, in each partition its keys fall in,
// all there or all absent (a batch is atomic per partition, not across them).
type batch struct {
	id    string
	keys  [][]byte
	value []byte
	acked bool
}

const keysPerBatch = 5

// send upserts b's keys in one call, within timeout, and records whether it
// was acknowledged.
func (b *batch) send(dc sluicev1.DataClient, timeout time.Duration) error {
	req := &sluicev1.UpsertRequest{}
	for _, k := range b.keys {
		req.Entries = append(req.Entries, &sluicev1.Entry{Key: k, Value: b.value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := dc.Upsert(ctx, req)
	// Acknowledged only if no part failed: a call over several partitions
	// that partly applied answers without an error and names the parts
	// that did not (each part is still all there or all absent).
	b.acked = err == nil && len(failedEntries(resp)) == 0
	return err
}

func newBatch(writer, n int) *batch {
	b := &batch{id: fmt.Sprintf("w%d-b%d", writer, n), value: []byte(fmt.Sprintf("value-w%d-b%d", writer, n))}
	for i := 0; i < keysPerBatch; i++ {
		b.keys = append(b.keys, []byte(fmt.Sprintf("%s-k%d", b.id, i)))
	}
	return b
}

// load writes batches from several writers until stop closes, and returns
// every batch it tried.
func load(addr string, writers int, stop <-chan struct{}) []*batch {
	var (
		mu  sync.Mutex
		all []*batch
		wg  sync.WaitGroup
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return
			}
			defer conn.Close()
			dc := sluicev1.NewDataClient(conn)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				b := newBatch(w, n)
				err := b.send(dc, 5*time.Second)
				mu.Lock()
				all = append(all, b)
				mu.Unlock()
				if err != nil {
					return // the node is gone
				}
			}
		}()
	}
	wg.Wait()
	return all
}

// check reads every batch back: acknowledged ones whole, the others whole or
// not at all.
func check(t *testing.T, addr string, batches []*batch) (acked, partial int) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	ctx := context.Background()
	ranges := keyspace.Split(keyspace.DefaultSlots, 4) // the node's default layout
	partitionOf := func(k []byte) int {
		slot := keyspace.Slot(k, keyspace.DefaultSlots)
		for i, r := range ranges {
			if r.Contains(slot) {
				return i
			}
		}
		return -1
	}
	for _, b := range batches {
		present := 0
		inPartition := map[int][2]int{} // partition → {keys, present}
		for _, k := range b.keys {
			c := inPartition[partitionOf(k)]
			c[0]++
			inPartition[partitionOf(k)] = c
			got, err := dc.Get(ctx, &sluicev1.GetRequest{Key: k})
			if err != nil {
				t.Fatalf("get %s: %v", k, err)
			}
			if got.Found {
				if string(got.Value) != string(b.value) {
					t.Fatalf("%s = %q, want %q", k, got.Value, b.value)
				}
				present++
				c[1]++
				inPartition[partitionOf(k)] = c
			}
		}
		if b.acked {
			acked++
			if present != keysPerBatch {
				t.Errorf("acknowledged batch %s lost %d of %d keys", b.id, keysPerBatch-present, keysPerBatch)
			}
			continue
		}
		for part, c := range inPartition {
			if c[1] != 0 && c[1] != c[0] {
				partial++
				t.Errorf("unacknowledged batch %s is half-applied in partition %d: %d of its %d keys", b.id, part+1, c[1], c[0])
			}
		}
	}
	return acked, partial
}

// kill -9 the node at random moments under load, start it again: every write
// that was acknowledged is there, and no batch is half-applied.
func TestKill9UnderLoadLosesNothingAcknowledged(t *testing.T) {
	kill9Rounds(t, newProc(t, kafkatest.ClusterName(t), t.TempDir()), 3)
}

// kill9Rounds writes batches under load and kills the node at random
// moments, rounds times, then starts it again and checks that every
// acknowledged batch is whole and none is half-applied.
func kill9Rounds(t *testing.T, p *proc, rounds int) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var all []*batch
	for round := 0; round < rounds; round++ {
		p.start()
		stop := make(chan struct{})
		done := make(chan []*batch)
		go func() { done <- load(p.addr, 8, stop) }()
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		p.kill()
		close(stop)
		all = append(all, <-done...)
	}
	p.start()
	acked, _ := check(t, p.addr, all)
	if acked == 0 {
		t.Fatal("no write was acknowledged: the load never ran")
	}
	t.Logf("%d batches tried, %d acknowledged, all present after %d kill -9s", len(all), acked, rounds)
}
