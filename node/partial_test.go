package node

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// An Upsert over several partitions is atomic per partition only. When one
// part fails and another applies, the answer says which: the applied
// entries' results, and the failed part with its code; never an error that
// claims nothing was applied.
func TestUpsertOverPartitionsSaysWhichPartsApplied(t *testing.T) {
	n := startNode(t, Config{Partitions: 4})
	ctx := context.Background()
	// Two keys in different partitions.
	var a, b string
	for i := 0; b == ""; i++ {
		k := fmt.Sprint("key-", i)
		_, p, _ := n.table.Load().Lookup([]byte(k))
		switch {
		case a == "":
			a = k
		default:
			if _, pa, _ := n.table.Load().Lookup([]byte(a)); pa.ID != p.ID {
				b = k
			}
		}
	}
	zero := uint64(0)
	if _, err := n.data.Upsert(ctx, upsert(b, "first")); err != nil {
		t.Fatal(err)
	}
	// b's expectation (absent) fails; a's part applies.
	req := &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{
		{Key: []byte(a), Value: []byte("applied"), ExpectedVersion: &zero},
		{Key: []byte(b), Value: []byte("refused"), ExpectedVersion: &zero},
	}}
	resp, err := n.data.Upsert(ctx, req)
	if err != nil {
		t.Fatalf("a partly applied Upsert failed as a whole: %v (a was applied)", err)
	}
	if resp.Results[0].GetVersion() != 1 || resp.Results[1].GetVersion() != 0 || len(resp.Failures) != 1 {
		t.Fatalf("results %v failures %v", resp.Results, resp.Failures)
	}
	f := resp.Failures[0]
	if codes.Code(f.Code) != codes.Aborted || !f.NotApplied || len(f.Entries) != 1 || f.Entries[0] != 1 {
		t.Fatalf("failure %v, want entry 1 ABORTED and not applied", f)
	}
	if g, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(a)}); err != nil || string(g.Value) != "applied" {
		t.Fatalf("Get(a) = %v %v", g, err)
	}
	// Every part refused: the call fails as before, naming the first.
	req.Entries[0].ExpectedVersion, req.Entries[1].ExpectedVersion = &zero, &zero
	_, err = n.data.Upsert(ctx, req)
	if st := status.Convert(err); st.Code() != codes.Aborted {
		t.Fatalf("an Upsert whose every part was refused: %v, want ABORTED", err)
	}
}
