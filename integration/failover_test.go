package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Three nodes, kill -9 of the one that owns every partition (and leads the
// membership group), never restarted: once its session times out, every
// partition serves again on the other two (the one with a standby promoted
// on it), and every acknowledged write is there. Logs the failover window
// per partition: the kill to the first write its new owner acknowledged.
func TestKilledNodeFailsOver(t *testing.T) {
	c := startCluster(t, "--session-timeout", "6s")
	ctx := context.Background()
	ctl := c.control("n2")
	// Partition 3 [8,12) comes back with a standby (on n2 or n3).
	if _, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Id: ptrU32(3)}); err != nil {
		t.Fatal(err)
	}
	added, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 8, To: 12}, Node: "n1", Standbys: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.waitServing("n2")
	ls, err := ctl.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.nodes["n2"].addr, c.nodes["n3"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	type writer struct {
		mu       sync.Mutex
		key      []byte
		acked    int
		killed   time.Time
		firstNew time.Duration // the kill to the first acknowledgement after it
	}
	writers := map[uint32]*writer{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range ls.Partitions {
		if p.Owner != "n1" {
			t.Fatalf("partition %d on %s before the kill", p.Id, p.Owner)
		}
		w := &writer{key: keyIn(p.Range.From, p.Range.To, ls.Slots)}
		writers[p.Id] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := cl.Upsert(callCtx, client.Entry{Key: w.key, Value: []byte(strconv.Itoa(seq))})
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				w.mu.Lock()
				w.acked = seq
				if !w.killed.IsZero() && w.firstNew == 0 {
					w.firstNew = time.Since(w.killed)
				}
				w.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	eventually(t, 60*time.Second, func() error {
		for id, w := range writers {
			w.mu.Lock()
			a := w.acked
			w.mu.Unlock()
			if a == 0 {
				return fmt.Errorf("partition %d has no acknowledged write yet", id)
			}
		}
		return nil
	})
	if err := c.nodes["n1"].killAlive(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, w := range writers {
		w.mu.Lock()
		w.killed = killed
		w.mu.Unlock()
	}
	eventually(t, 90*time.Second, func() error {
		for id, w := range writers {
			w.mu.Lock()
			f := w.firstNew
			w.mu.Unlock()
			if f == 0 {
				return fmt.Errorf("partition %d has acknowledged nothing since the kill", id)
			}
		}
		return nil
	})
	close(stop)
	wg.Wait()
	after, err := ctl.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range after.Partitions {
		w := writers[p.Id]
		if p.Owner == "n1" {
			t.Fatalf("partition %d still on the killed n1", p.Id)
		}
		if p.Id == added.Id && p.Owner != added.Standbys[0] {
			t.Errorf("partition %d went to %s, not its standby %s", p.Id, p.Owner, added.Standbys[0])
		}
		v, found, err := cl.Get(ctx, w.key)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := strconv.Atoi(string(v.Data))
		if !found || got < w.acked {
			t.Errorf("partition %d: %s holds %q, but %d was acknowledged", p.Id, w.key, v.Data, w.acked)
		}
		t.Logf("partition %d now on %s: failover window %v (--session-timeout 6s)", p.Id, p.Owner, w.firstNew.Round(time.Millisecond))
	}
}

func ptrU32(v uint32) *uint32 { return &v }
