package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/bench"
	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// write is one Upsert a watch test made, and what it knows of its outcome.
type write struct {
	key, value string
	version    uint64 // when acked
	acked      bool
	notApplied bool // the answer said so: it must never be seen
}

// watchWriters upsert unique values to 40 keys under "watch/" (and, every
// fifth, under "other/") until stop closes, recording every outcome.
func watchWriters(t *testing.T, addrs []string, n int, stop <-chan struct{}, acked *atomic.Int64) func() []*write {
	var (
		mu  sync.Mutex
		all []*write
		wg  sync.WaitGroup
	)
	for w := range n {
		cl, err := client.New(addrs...)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				prefix := "watch/"
				if i%5 == 4 {
					prefix = "other/"
				}
				wr := &write{key: fmt.Sprintf("%sk%02d", prefix, rng.IntN(40)), value: fmt.Sprintf("w%d-%d", w, i)}
				// Short: a write to a stopped node's partition must not hold
				// its writer up (it is then of unknown outcome).
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				res, err := cl.Upsert(ctx, client.Entry{Key: []byte(wr.key), Value: []byte(wr.value)})
				cancel()
				if err == nil {
					wr.acked, wr.version = true, res[0].Version
					acked.Add(1)
				} else {
					for _, d := range status.Convert(err).Details() {
						if _, ok := d.(*sluicev1.NotApplied); ok {
							wr.notApplied = true
						}
					}
					time.Sleep(20 * time.Millisecond) // a partition moving or down: try on
				}
				mu.Lock()
				all = append(all, wr)
				mu.Unlock()
			}
		}()
	}
	return func() []*write {
		wg.Wait()
		return all
	}
}

// A watcher sees exactly the acknowledged writes under its prefix (and
// perhaps writes whose outcome was unknown, never one refused), each once,
// in version order per key, across a kill -9 of the node serving it and
// partition moves, with one reconnect: the kill breaks its stream and it
// resumes on another node from its last token (the node is stopped a while
// before it is killed, so writes it never delivered must come from there);
// moves do not interrupt it.
func TestWatchAcrossKill9AndMoves(t *testing.T) {
	c := startCluster(t)
	c.move(2, "n2")
	c.move(3, "n3") // n1 keeps partitions 1 and 4
	watcher, err := client.New(c.nodes["n1"].addr, c.nodes["n2"].addr, c.nodes["n3"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	var (
		mu       sync.Mutex
		events   []client.Change
		resumes  []string
		started  = make(chan struct{})
		once     sync.Once
		ctx, end = context.WithCancel(context.Background())
	)
	defer end()
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- watcher.Watch(ctx, []byte("watch/"), client.WatchOptions{
			OnResume: func(addr string, err error) {
				mu.Lock()
				resumes = append(resumes, fmt.Sprintf("%s after %v", addr, err))
				mu.Unlock()
			}}, func(b client.WatchBatch) error {
			once.Do(func() { close(started) })
			mu.Lock()
			events = append(events, b.Changes...)
			mu.Unlock()
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-watchDone:
		t.Fatalf("watch ended before it started: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no first watch message in 30s")
	}

	var acked atomic.Int64
	stop := make(chan struct{})
	wait := watchWriters(t, []string{c.nodes["n2"].addr, c.nodes["n3"].addr}, 8, stop, &acked)
	ackedAtLeast := func(n int64) {
		t.Helper()
		eventually(t, 60*time.Second, func() error {
			if a := acked.Load(); a < n {
				return fmt.Errorf("%d writes acknowledged, waiting for %d", a, n)
			}
			return nil
		})
	}
	ackedAtLeast(200)
	// Stopped first, n1 delivers nothing more while the writes to n2's and
	// n3's partitions go on: the watch must get those from its last token.
	c.nodes["n1"].signal(syscall.SIGSTOP)
	ackedAtLeast(acked.Load() + 50)
	c.nodes["n1"].kill()
	t.Log("stopped, then killed n1 (serving the watch, owning partitions 1 and 4)")
	for _, m := range []struct {
		id   uint32
		node string
	}{{1, "n2"}, {4, "n3"}} {
		if _, err := c.control("n2").MovePartition(context.Background(), &sluicev1.MovePartitionRequest{Id: m.id, Node: m.node}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitServing("n2")
	ackedAtLeast(acked.Load() + 200)
	c.move(2, "n3") // under writes, with the watch on n2
	ackedAtLeast(acked.Load() + 100)
	close(stop)
	writes := wait()

	byValue := map[string]*write{}
	want := 0
	for _, w := range writes {
		byValue[w.value] = w
		if w.acked && w.key[:6] == "watch/" {
			want++
		}
	}
	// Every acknowledged write under the prefix shows up.
	eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, e := range events {
			seen[string(e.Value)] = true
		}
		for _, w := range writes {
			if w.acked && w.key[:6] == "watch/" && !seen[w.value] {
				return fmt.Errorf("acknowledged write %s=%s (version %d) not seen yet (%d events)", w.key, w.value, w.version, len(events))
			}
		}
		return nil
	})
	end()
	<-watchDone
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	lastVersion := map[string]uint64{}
	uncertain := 0
	for _, e := range events {
		k, v := string(e.Key), string(e.Value)
		w := byValue[v]
		switch {
		case w == nil || w.key != k:
			t.Fatalf("event %s=%s was never written", k, v)
		case w.notApplied:
			t.Fatalf("event %s=%s of a write refused as not applied", k, v)
		case seen[v]:
			t.Fatalf("event %s=%s seen twice", k, v)
		case e.Version <= lastVersion[k]:
			t.Fatalf("%s: version %d after %d: out of order", k, e.Version, lastVersion[k])
		case w.acked && e.Version != w.version:
			t.Fatalf("%s=%s has version %d, its write was acknowledged at %d", k, v, e.Version, w.version)
		case !w.acked:
			uncertain++
		}
		seen[v], lastVersion[k] = true, e.Version
	}
	t.Logf("%d writes, %d acknowledged under watch/, %d events (%d of writes with an unknown outcome); resumed: %v", len(writes), want, len(events), uncertain, resumes)
	if len(resumes) != 1 {
		t.Fatalf("the watch resumed %d times (%v): want once, after the kill", len(resumes), resumes)
	}
}

// The README's promise, from outside: with many writers over every slot, a
// watch delivers every acknowledged change, once, in version order per key,
// with the version its write was acknowledged at. The time from a write's
// acknowledgement to its event is measured (sluice bench -w watch runs the
// same measure; BENCHMARKS.md has its figures), not asserted.
func TestWatchDeliversEveryAcknowledgedChangeInOrder(t *testing.T) {
	p := newProc(t, kafkatest.ClusterName(t), t.TempDir())
	p.start()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := bench.WatchLatency(ctx, bench.Config{Addrs: []string{p.addr}, Concurrency: 16, Rate: 400, Keys: 500, Duration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r.Print(&out)
	t.Log(out.String())
	switch {
	case r.Acked < 500:
		t.Fatalf("only %d writes acknowledged", r.Acked)
	case r.Slots != r.SlotCount || r.SlotCount != 16:
		t.Fatalf("writes covered %d of %d slots, want all 16", r.Slots, r.SlotCount)
	case r.Missing > 0 || r.OutOfOrder > 0 || r.WrongVersion > 0:
		t.Fatalf("the watch broke its promise: %d acknowledged writes missing, %d events out of order, %d with another version", r.Missing, r.OutOfOrder, r.WrongVersion)
	}
}
