package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// readMemoryNodeEnv makes this test binary a node process for
// TestReadMemoryBoundsConcurrentReads: its value is the node's read memory.
const readMemoryNodeEnv = "SLUICE_TEST_READ_MEMORY_NODE"

// Many concurrent GetMany calls and Scans of large values keep the node's
// heap within its read memory and a margin: 64 GetMany calls of 3 MB
// responses and 16 scans of 24 MB at once. The node runs in a process of
// its own, so the clients' buffers are not counted. Without the bound
// (SLUICE_TEST_READ_MEMORY=1099511627776) the node builds every response at
// once and its heap grows by 594 MiB; with it, 81 MiB.
func TestReadMemoryBoundsConcurrentReads(t *testing.T) {
	if os.Getenv(readMemoryNodeEnv) != "" {
		t.Skip("the node process of this test runs in TestReadMemoryNodeProcess")
	}
	const bound = 32 << 20
	limit := int64(bound)
	if s := os.Getenv("SLUICE_TEST_READ_MEMORY"); s != "" { // the node's, to see it fail without the bound: 1099511627776
		limit, _ = strconv.ParseInt(s, 10, 64)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadMemoryNodeProcess$", "-test.v")
	// GOGC=25: the node's heap is measured close to what is live, not to
	// what the collector lets pile up between its runs.
	cmd.Env = append(os.Environ(), readMemoryNodeEnv+"="+strconv.FormatInt(limit, 10), "GOGC=25")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	field := func(name string) string { // the node's next line "name value"
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), name+" "); ok {
				return v
			}
		}
		t.Fatalf("the node process ended before saying %s", name)
		return ""
	}
	addr := field("addr")

	cl, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var keys [][]byte
	for i := range 24 {
		k := fmt.Appendf(nil, "big-%02d", i)
		keys = append(keys, k)
		if _, err := cl.Upsert(ctx, client.Entry{Key: k, Value: bytes.Repeat([]byte{byte('a' + i)}, 1_000_000)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := sluicev1.NewDataClient(conn)
	if _, err := io.WriteString(stdin, "base\n"); err != nil { // the values written: the heap before the reads
		t.Fatal(err)
	}
	base, _ := strconv.ParseUint(field("heap"), 10, 64)
	var wg sync.WaitGroup
	var read, refused atomic.Int64
	// retry calls f until it is not refused for the read memory (it then
	// answers RESOURCE_EXHAUSTED naming the flag: ask again).
	retry := func(f func() error) {
		defer wg.Done()
		for range 1000 {
			err := f()
			if status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "--read-memory") {
				refused.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Error(err)
			}
			return
		}
		t.Error("refused 1000 times")
	}
	for range 64 {
		wg.Add(1)
		go retry(func() error {
			resp, err := data.GetMany(ctx, &sluicev1.GetManyRequest{Keys: keys, Consistency: sluicev1.Consistency_EVENTUAL})
			for _, r := range resp.GetResults() {
				if r.Found {
					read.Add(1)
				}
			}
			return err
		})
	}
	for range 16 {
		wg.Add(1)
		go retry(func() error {
			st, err := data.Scan(ctx, &sluicev1.ScanRequest{Prefix: []byte("big-"), Consistency: sluicev1.Consistency_EVENTUAL})
			if err != nil {
				return err
			}
			var entries int64
			for {
				msg, err := st.Recv()
				if err == io.EOF {
					read.Add(entries) // a scan refused half-way starts over
					return nil
				}
				if err != nil {
					return err
				}
				entries += int64(len(msg.Entries))
			}
		})
	}
	wg.Wait()
	stdin.Close()
	peak, _ := strconv.ParseUint(field("peak"), 10, 64)
	grew := int64(peak) - int64(base)
	t.Logf("read memory %d MiB: the node's heap in use grew by %d MiB at its peak; %d values read, %d calls refused", limit>>20, grew>>20, read.Load(), refused.Load())
	if want := int64(64*3 + 16*24); read.Load() != want { // a GetMany answers 3 of its 24 values of 1 MB
		t.Fatalf("%d values read, want %d", read.Load(), want)
	}
	// The margin: the garbage of the responses sent (the collector lets
	// the heap grow to twice what is live), gRPC's read buffers, Badger's
	// memtables. Measured (GOGC=25): 81 MiB with the bound, 594 MiB without.
	if margin := int64(128 << 20); grew > bound+margin {
		t.Fatalf("the node's heap grew by %d MiB, over the read memory of %d MiB and a margin of %d MiB", grew>>20, bound>>20, margin>>20)
	}
}

// TestReadMemoryNodeProcess is the node of TestReadMemoryBoundsConcurrentReads
// (run only as its child): it says "addr", and "heap" (in use after a
// collection) when it reads a line, then samples its heap until its stdin
// closes and says "peak".
func TestReadMemoryNodeProcess(t *testing.T) {
	limit, err := strconv.ParseInt(os.Getenv(readMemoryNodeEnv), 10, 64)
	if err != nil {
		t.Skip("run by TestReadMemoryBoundsConcurrentReads only")
	}
	cfg := node.Config{Brokers: kafkatest.Brokers(t), Cluster: kafkatest.ClusterName(t), DataDir: t.TempDir(),
		DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "test-token", HTTPAddr: "-", ReadMemory: limit,
		Log: zerolog.New(io.Discard)}
	nd, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	for deadline := time.Now().Add(60 * time.Second); !nd.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node not ready in 60s")
		}
	}
	fmt.Printf("addr %s\n", nd.DataAddr())
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap %d\n", ms.HeapInuse)
	closed := make(chan struct{})
	go func() { io.Copy(io.Discard, in); close(closed) }()
	peak := ms.HeapInuse
	for {
		select {
		case <-closed:
			fmt.Printf("peak %d\n", peak)
			return
		case <-time.After(5 * time.Millisecond):
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
}
