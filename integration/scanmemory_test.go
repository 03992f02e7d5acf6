package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A scan of 1,000,000 keys (about 170 MB of keys and values) through a
// client with gRPC's smallest window, which stops reading for a while: the
// node streams it with bounded memory, whatever the range. Run without the
// race detector (its shadow memory would be what is measured).
func TestScanOfAMillionKeysHoldsLittleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1,000,000 keys")
	}
	httpAddr := freeAddr(t)
	p := newProc(t, kafkatest.ClusterName(t), t.TempDir(), "--http-addr", httpAddr)
	p.bin = plainBin(t)
	p.start()

	const keys, perBatch, valueSize = 1_000_000, 4000, 160
	value := bytes.Repeat([]byte("v"), valueSize)
	cl, err := client.New(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b := next.Add(1) - 1
				if b*perBatch >= keys {
					return
				}
				entries := make([]client.Entry, perBatch)
				for i := range entries {
					entries[i] = client.Entry{Key: fmt.Appendf(nil, "m-%07d", b*perBatch+int64(i)), Value: value}
				}
				if _, err := cl.Upsert(context.Background(), entries...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d keys in %v; node RssAnon %d MiB", keys, time.Since(start).Round(time.Second), rssAnon(t, p.cmd.Process.Pid)>>20)
	// A fresh process, so that the heap the writes grew is not there to
	// hide what the scan holds (Go returns freed memory to the system slowly).
	p.kill()
	p.start()
	pid := p.cmd.Process.Pid
	before, goalBefore := rssAnon(t, pid), heapGoal(t, httpAddr)
	t.Logf("restarted: RssAnon %d MiB, VmRSS %d MiB, heap goal %d MiB", before>>20, vmRSS(t, pid)>>20, goalBefore>>20)

	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := sluicev1.NewDataClient(conn).Scan(context.Background(), &sluicev1.ScanRequest{Prefix: []byte("m-")})
	if err != nil {
		t.Fatal(err)
	}
	var peak, peakGoal atomic.Int64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rssAnon(t, pid); r > peak.Load() {
				peak.Store(r)
			}
			if g := heapGoal(t, httpAddr); g > peakGoal.Load() {
				peakGoal.Store(g)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	n, stalled := 0, false
	var last []byte
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Entries {
			if last != nil && bytes.Compare(e.Key, last) <= 0 {
				t.Fatalf("%q after %q", e.Key, last)
			}
			last = e.Key
			n++
		}
		if !stalled && n >= keys/2 {
			stalled = true
			time.Sleep(3 * time.Second) // the node must wait, not buffer
			t.Logf("half-way (%d keys), after a 3 s stall: RssAnon peak %d MiB, heap goal peak %d MiB", n, peak.Load()>>20, peakGoal.Load()>>20)
		}
	}
	close(stopSampling)
	<-sampled
	t.Logf("scanned %d keys; node RssAnon peaked at %d MiB, heap goal at %d MiB", n, peak.Load()>>20, peakGoal.Load()>>20)
	if n != keys {
		t.Fatalf("scanned %d keys, want %d", n, keys)
	}
	// Twice the live heap after a collection: a scan that held its entries
	// would raise it by twice what it holds (+527 MiB, measured on a node
	// that collected them before sending). A fresh node's goal also grows as
	// it warms up (Badger's caches, gRPC's buffers): +6 MiB from a start at
	// 255 MiB on an idle machine, +72 MiB from one at 191 MiB with a core
	// kept busy; so the bound is half what holding the entries would add.
	if growth := peakGoal.Load() - goalBefore; growth > 170<<20 {
		t.Fatalf("the node's heap goal grew by %d MiB during the scan of ~170 MB: it holds entries", growth>>20)
	}
	// Resident memory also holds the garbage the scan makes until the heap
	// reaches its goal, so its bound is looser, yet below what a node that
	// held the scanned entries (~260 MB of them) would need.
	if peak.Load() > 320<<20 {
		t.Fatalf("the node's anonymous memory reached %d MiB during the scan of ~170 MB (%d MiB before): it buffers", peak.Load()>>20, before>>20)
	}
}

// heapGoal is the node's Go heap goal (go_memstats_next_gc_bytes: twice
// the heap that was live after the last collection, with GOGC=100).
func heapGoal(t *testing.T, httpAddr string) int64 {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_next_gc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Error(err)
			}
			return int64(f)
		}
	}
	t.Error("no go_memstats_next_gc_bytes in /metrics")
	return 0
}
