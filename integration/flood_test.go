package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// floodBudget is the node budget the flood test runs with, and floodMargin
// what the node may hold beyond it: the requests gRPC is reading and
// decoding before the budget refuses them (2.5 MiB each of floodStreams: its
// buffer, the decoded message, and the garbage collector's lag), Badger's
// memtables, the Kafka producer's buffers and the Go heap's headroom.
const (
	floodBudget  = 32 << 20
	floodStreams = 256
	floodMargin  = floodStreams*5<<19 + 160<<20
)

// A flood of 1 MiB batches from 256 concurrent calls against a node with a
// small byte budget: the node's anonymous memory (RssAnon: the value log's
// mapped files are the page cache's, not the node's) stays under its
// start-up figure plus the budget plus a stated margin, and every refused
// write says it was not applied (RESOURCE_EXHAUSTED with a NotApplied
// detail). Without the budget the same flood peaked at 1020 MiB, over the
// bound (see README, "Storage and memory").
func TestFloodStaysWithinTheBudget(t *testing.T) {
	p := newProc(t, kafkatest.ClusterName(t), t.TempDir(), "--node-budget", strconv.Itoa(floodBudget), "--partition-budget", strconv.Itoa(floodBudget/2))
	p.bin = plainBin(t)
	p.start()
	base := rssAnon(t, p.cmd.Process.Pid)

	value := make([]byte, 1<<20-64)
	var ok, refused, other atomic.Int64
	var firstOther atomic.Value
	end := time.Now().Add(10 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	var wg sync.WaitGroup
	for c := range floodStreams / 64 {
		conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		data := sluicev1.NewDataClient(conn)
		for s := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					key := fmt.Appendf(nil, "flood-%d-%d-%d", c, s, i%8)
					_, err := data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: key, Value: value}}})
					switch st := status.Convert(err); {
					case err == nil:
						ok.Add(1)
					case st.Code() == codes.ResourceExhausted && notApplied(st):
						refused.Add(1)
					case ctx.Err() != nil, st.Code() == codes.DeadlineExceeded && time.Until(end) < 2*time.Second:
						// The flood's end: the server's copy of the deadline
						// may fire a moment before the client's.
					default:
						other.Add(1)
						firstOther.CompareAndSwap(nil, err.Error())
					}
				}
			}()
		}
	}
	peak := base
	for ctx.Err() == nil {
		peak = max(peak, rssAnon(t, p.cmd.Process.Pid))
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("flood: %d applied, %d refused (NotApplied), RssAnon %d MiB at start, peak %d MiB (budget %d MiB, margin %d MiB)",
		ok.Load(), refused.Load(), base>>20, peak>>20, floodBudget>>20, floodMargin>>20)
	if other.Load() > 0 {
		t.Fatalf("%d writes failed other than by a refusal that says not applied, e.g. %v", other.Load(), firstOther.Load())
	}
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("the flood did not both apply (%d) and meet the budget (%d)", ok.Load(), refused.Load())
	}
	if limit := base + floodBudget + floodMargin; peak > limit {
		t.Fatalf("peak RssAnon %d MiB over start %d + budget %d + margin %d MiB", peak>>20, base>>20, floodBudget>>20, floodMargin>>20)
	}
}

func notApplied(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*sluicev1.NotApplied); ok {
			return true
		}
	}
	return false
}
