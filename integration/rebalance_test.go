package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// balanced reports whether every partition serves on a node of want, none
// is moving, and the loads of want's nodes differ by one at most; it
// returns the loads.
func (c *cluster) balanced(via string, want []string) (map[string]int, error) {
	ls, err := c.control(via).ListPartitions(context.Background(), &sluicev1.ListPartitionsRequest{})
	if err != nil {
		return nil, err
	}
	load := map[string]int{}
	for _, n := range want {
		load[n] = 0
	}
	for _, p := range ls.Partitions {
		if _, ok := load[p.Owner]; !ok || p.State != "serving" || p.MovingTo != "" {
			return load, fmt.Errorf("partition %d on %s is %q (moving to %q)", p.Id, p.Owner, p.State, p.MovingTo)
		}
		load[p.Owner]++
	}
	lo, hi := len(ls.Partitions), 0
	for _, n := range load {
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1 {
		return load, fmt.Errorf("loads %v", load)
	}
	return load, nil
}

// loadWrite is one acknowledged-or-not write of the load.
type loadWrite struct {
	key      string
	at       time.Time
	took     time.Duration
	err      error
	acked    bool
	writerID int
}

// p99 of the acknowledged writes that began in [from, to).
func p99(ws []loadWrite, from, to time.Time) (time.Duration, int) {
	var d []time.Duration
	for _, w := range ws {
		if w.acked && !w.at.Before(from) && w.at.Before(to) {
			d = append(d, w.took)
		}
	}
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)*99/100], len(d)
}

// A fourth node joins three under writes: partitions spread onto it, each
// warmed up as a standby there before it changes owner, and nothing
// acknowledged is lost. Logs the time until balanced and the p99 of writes
// during the rebalance against the p99 before it. Then the fourth node is
// paused (SIGSTOP) past its session timeout: its partitions fail over to
// the others; resumed, it rejoins the group and gets partitions back.
func TestAFourthNodeTakesPartitionsUnderLoad(t *testing.T) {
	c := startCluster(t, "--session-timeout", "6s", "--rebalance", "--partitions", "8")
	three := []string{"n1", "n2", "n3"}
	eventually(t, 2*time.Minute, func() error { _, err := c.balanced("n2", three); return err })

	cl, err := client.New(c.addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var (
		mu     sync.Mutex
		writes []loadWrite
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k := fmt.Sprintf("rb-%d-%d", w, i)
				callCtx, done := context.WithTimeout(ctx, 20*time.Second)
				start := time.Now()
				_, err := cl.Upsert(callCtx, client.Entry{Key: []byte(k), Value: []byte(k)})
				took := time.Since(start)
				done()
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				writes = append(writes, loadWrite{key: k, at: start, took: took, err: err, acked: err == nil, writerID: w})
				mu.Unlock()
			}
		}()
	}
	before := time.Now()
	time.Sleep(10 * time.Second)
	joined := time.Now()
	c.addNode("n4")
	four := append(three, "n4")
	var load map[string]int
	eventually(t, 3*time.Minute, func() (err error) { load, err = c.balanced("n2", four); return err })
	balancedAt := time.Now()
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()
	if load["n4"] != 2 {
		t.Fatalf("after the rebalance n4 owns %d partitions (loads %v), want 2 of 8", load["n4"], load)
	}
	pBefore, nBefore := p99(writes, before, joined)
	pDuring, nDuring := p99(writes, joined, balancedAt)
	errs := map[string]int{}
	acked := 0
	for _, w := range writes {
		if w.acked {
			acked++
		} else {
			errs[w.err.Error()]++
		}
	}
	t.Logf("n4 joined: balanced %v later (loads %v); write p99 %v over %d writes before, %v over %d during (%.2f×); %d acknowledged, %d failed %v",
		balancedAt.Sub(joined).Round(time.Millisecond), load, pBefore.Round(time.Millisecond), nBefore, pDuring.Round(time.Millisecond), nDuring,
		float64(pDuring)/float64(max(pBefore, 1)), acked, len(writes)-acked, errs)
	if acked < 100 {
		t.Fatalf("only %d writes acknowledged: the run tested too little", acked)
	}
	// Nothing acknowledged is lost.
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer rcancel()
	for _, w := range writes {
		if !w.acked {
			continue
		}
		v, found, err := cl.Get(rctx, []byte(w.key))
		if err != nil {
			t.Fatal(err)
		}
		if !found || string(v.Data) != w.key {
			t.Fatalf("%s was acknowledged but reads %q (found %v)", w.key, v.Data, found)
		}
	}

	// n4 paused past its session: its partitions fail over; resumed, it
	// rejoins and gets partitions back.
	n4 := c.nodes["n4"]
	n4.signal(syscall.SIGSTOP)
	paused := time.Now()
	eventually(t, 2*time.Minute, func() error { _, err := c.balanced("n2", three); return err })
	failedOver := time.Since(paused)
	n4.signal(syscall.SIGCONT)
	resumed := time.Now()
	eventually(t, 3*time.Minute, func() (err error) {
		load, err = c.balanced("n2", four)
		if err == nil && load["n4"] == 0 {
			err = fmt.Errorf("n4 owns nothing yet")
		}
		return err
	})
	t.Logf("n4 paused: its partitions on the other three %v later; resumed: it owns %d again %v later (loads %v)",
		failedOver.Round(time.Millisecond), load["n4"], time.Since(resumed).Round(time.Millisecond), load)
}
