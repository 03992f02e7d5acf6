package partition

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/store"
)

// group is one append group: the change records of many requests, appended in
// one Kafka transaction (group commit). Its number orders it: groups commit in
// number order, one in flight at a time.
type group struct {
	n       uint64
	recs    []*kgo.Record  // appended in this order; Offset is set once committed
	changes []store.Change // recs[i] is changes[i]: applied to the store only after commit
	clock   uint64         // highest clock stamp in the group
	bytes   int
}

func (g *group) empty() bool { return len(g.recs) == 0 }

func (g *group) add(rec *kgo.Record, c store.Change) {
	g.recs = append(g.recs, rec)
	g.changes = append(g.changes, c)
	g.bytes += len(c.Key) + len(c.Value)
	if c.Timestamp > g.clock {
		g.clock = c.Timestamp
	}
}

// batch is what the store applies after the group committed: its changes and
// the next offset of every slot it wrote to, in one write.
func (g *group) batch() store.Batch {
	offsets := make(map[int32]int64)
	for _, r := range g.recs {
		if next := r.Offset + 1; next > offsets[r.Partition] {
			offsets[r.Partition] = next
		}
	}
	return store.Batch{Changes: g.changes, Offsets: offsets, Clock: g.clock}
}

// pending is a key's speculative value: written by a group not yet applied to
// the store.
type pending struct {
	v       store.Value
	removed bool
	group   uint64
}
