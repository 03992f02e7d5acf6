package server_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// allocated is the bytes the process allocates while f runs: f's least of
// three runs, so that a background goroutine's allocations (Kafka fetches,
// metrics) in one run do not count.
func allocated(f func()) uint64 {
	least := ^uint64(0)
	for range 3 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// One GetMany cannot make a node allocate much more than its response
// limit, whatever it names: a value named 1,000 times is read once, and
// distinct large values are read only while they fit (issue 22, item 5: a
// 10 KB request naming one 256 KiB value 1,000 times allocated 250 MiB).
// The bound counts both ends of the call, which run in this process: the
// server's reads and encoding and the client's decoding, a few times the
// limit.
func TestGetManyAllocatesWithinItsLimit(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	const limit = server.MaxGetManyValueBytes
	bound := uint64(5 * limit)

	dup := bytes.Repeat([]byte("d"), 256<<10)
	if _, err := n.cl.Upsert(ctx, client.Entry{Key: []byte("dup"), Value: dup}); err != nil {
		t.Fatal(err)
	}
	dups := make([][]byte, server.MaxGetManyKeys)
	for i := range dups {
		dups[i] = []byte("dup")
	}
	large := bytes.Repeat([]byte("l"), 512<<10)
	var distinct [][]byte
	for i := range 64 {
		k := fmt.Appendf(nil, "large-%02d", i)
		distinct = append(distinct, k)
		if _, err := n.cl.Upsert(ctx, client.Entry{Key: k, Value: large}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name  string
		keys  [][]byte
		value []byte
	}{{"one 256 KiB value named 1000 times", dups, dup}, {"64 distinct 512 KiB values", distinct, large}} {
		for _, level := range []sluicev1.Consistency{sluicev1.Consistency_LINEARIZABLE, sluicev1.Consistency_SESSION, sluicev1.Consistency_EVENTUAL} {
			req := &sluicev1.GetManyRequest{Keys: tc.keys, Consistency: level, Session: wireSession(n.cl.Session())}
			var resp *sluicev1.GetManyResponse
			var err error
			got := allocated(func() { resp, err = n.data.GetMany(ctx, req) })
			if err != nil {
				t.Fatalf("%s, %v: %v", tc.name, level, err)
			}
			if got > bound {
				t.Errorf("%s, %v: the call allocated %d MiB, over %d MiB (5 times the response limit)", tc.name, level, got>>20, bound>>20)
			}
			// What fits is answered, the rest is asked again.
			read := 0
			for i, r := range resp.Results {
				switch {
				case r.Found && bytes.Equal(r.Value, tc.value):
					read++
				case r.Error != nil && codes.Code(r.Error.Code) == codes.ResourceExhausted:
				default:
					t.Fatalf("%s, %v: key %d: %+v", tc.name, level, i, r)
				}
			}
			if want := limit / len(tc.value); read != want {
				t.Errorf("%s, %v: %d values read, want the %d that fit in %d bytes", tc.name, level, read, want, limit)
			}
			t.Logf("%s, %v: %.1f MiB allocated, %d values answered", tc.name, level, float64(got)/(1<<20), read)
		}
	}
}
