package node

import (
	"fmt"
	"sort"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/registry"
)

func TestDelta(t *testing.T) {
	p := func(id uint32, from, to int32, epoch uint64) registry.Partition {
		return registry.Partition{ID: id, Range: keyspace.Range{From: from, To: to}, Owner: "n1", Epoch: epoch}
	}
	current := map[uint32]registry.Partition{1: p(1, 0, 4, 1), 2: p(2, 4, 8, 1), 3: p(3, 8, 12, 1)}
	desired := map[uint32]registry.Partition{1: p(1, 0, 4, 1), 3: p(3, 8, 12, 2), 4: p(4, 12, 16, 1)}
	var got []string
	for _, o := range delta(current, desired) {
		got = append(got, fmt.Sprint(o.kind, " ", o.spec.ID, "@", o.spec.Epoch))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[add 4@1 del 2@1 update 3@2]" {
		t.Fatalf("delta = %v", got)
	}
	if ops := delta(desired, desired); len(ops) != 0 {
		t.Fatalf("no change gave ops %v", ops)
	}
}
