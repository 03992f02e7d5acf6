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
	own := func(ps ...registry.Partition) map[uint32]want {
		m := map[uint32]want{}
		for _, x := range ps {
			m[x.ID] = want{x, owner}
		}
		return m
	}
	current := own(p(1, 0, 4, 1), p(2, 4, 8, 1), p(3, 8, 12, 1))
	current[5] = want{p(5, 12, 14, 1), standby} // a standby that becomes the owner
	current[6] = want{p(6, 14, 15, 1), owner}   // an owner that keeps a standby
	desired := own(p(1, 0, 4, 1), p(3, 8, 12, 2), p(4, 15, 16, 1), p(5, 12, 14, 2))
	desired[6] = want{p(6, 14, 15, 2), standby}
	desired[7] = want{p(7, 16, 17, 1), standby}
	var got []string
	for _, o := range delta(current, desired) {
		got = append(got, fmt.Sprint(o.kind, " ", o.spec.ID, "@", o.spec.Epoch))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[add 4@1 del 2@1 demote 6@2 promote 5@2 standby 7@1 update 3@2]" {
		t.Fatalf("delta = %v", got)
	}
	if ops := delta(desired, desired); len(ops) != 0 {
		t.Fatalf("no change gave ops %v", ops)
	}
}
