package partition

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/store"
)

// group is one append group: the records of many requests, appended in one
// Kafka transaction (group commit). Its number orders it: groups commit in
// number order, one in flight at a time.
type group struct {
	n       uint64
	recs    []*kgo.Record  // change records; Offset is set once committed
	changes []store.Change // changes[i] is recs[i]: applied to the store only after commit
	// extra are records that change no key: ingest progress marks (changelog)
	// and dead letters (DLQ), committed in the same transaction.
	extra  []*kgo.Record
	ingest map[int32]int64 // next ingest offset per slot once committed
	dlq    int             // dead letters among extra
	// forwarded counts ingest records moved to the slot that owns their key.
	forwarded int
	clock     uint64 // highest clock stamp in the group
	bytes     int
}

// empty says there is nothing to append: no change, no mark, no dead letter.
func (g *group) empty() bool { return len(g.recs) == 0 && len(g.extra) == 0 && len(g.ingest) == 0 }

func (g *group) add(rec *kgo.Record, c store.Change) {
	g.recs = append(g.recs, rec)
	g.changes = append(g.changes, c)
	g.bytes += len(c.Key) + len(c.Value)
	if c.Timestamp > g.clock {
		g.clock = c.Timestamp
	}
}

func (g *group) addExtra(rec *kgo.Record) {
	g.extra = append(g.extra, rec)
	g.bytes += len(rec.Key) + len(rec.Value)
}

// records are everything the transaction appends.
func (g *group) records() []*kgo.Record {
	if len(g.extra) == 0 {
		return g.recs
	}
	return append(g.recs[:len(g.recs):len(g.recs)], g.extra...)
}

// batch is what the store applies after the group committed: its changes, the
// next offset of every changelog slot it wrote to and the ingest offsets it
// consumed, in one write.
func (g *group) batch(changelogTopic string) store.Batch {
	offsets := make(map[int32]int64)
	for _, recs := range [][]*kgo.Record{g.recs, g.extra} {
		for _, r := range recs {
			if next := r.Offset + 1; r.Topic == changelogTopic && next > offsets[r.Partition] {
				offsets[r.Partition] = next
			}
		}
	}
	return store.Batch{Changes: g.changes, Offsets: offsets, Ingest: g.ingest, Clock: g.clock}
}

// pending is a key's speculative value: written by a group not yet applied to
// the store.
type pending struct {
	v       store.Value
	removed bool
	group   uint64
}
