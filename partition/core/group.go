package core

import (
	"maps"
	"slices"
	"time"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/wal"
)

// Group is one append group: the records of many requests, appended in one
// transaction (group commit). Its number orders it: groups are appended one at
// a time, in number order. The core does not change a group once Ready hands
// it out for appending.
type Group struct {
	N uint64
	wal.Group
	// Ingest is the next ingest offset per slot once the group committed: its
	// marks are among Records.
	Ingest map[int32]int64
	// Began is when the core handed the group out: if it commits, this
	// partition still owned its slots then.
	Began time.Time
	// Offsets are the positions of Records, once committed.
	Offsets []int64
	bytes   int
	clock   uint64 // highest clock stamp in the group
	// isolated is the one ingest record a quarantined group holds.
	isolated *kv.Source
}

func (g *Group) empty() bool {
	return len(g.Records) == 0 && len(g.DeadLetters) == 0 && len(g.Forwards) == 0 && len(g.Ingest) == 0
}

// add appends a record and returns its index.
func (g *Group) add(r kv.Record) int {
	g.Records = append(g.Records, r)
	g.bytes += len(r.Change.Key) + len(r.Change.Value) + 64
	g.clock = max(g.clock, r.Change.Timestamp)
	return len(g.Records) - 1
}

func (g *Group) deadLetter(r kv.IngestRecord, why string) {
	g.DeadLetters = append(g.DeadLetters, wal.DeadLetter{Record: r, Reason: why})
	g.bytes += min(r.Size(), kv.MaxBatchBytes) + 256
}

func (g *Group) forward(slot int32, r kv.IngestRecord) {
	g.Forwards = append(g.Forwards, wal.Forward{Slot: slot, Record: r})
	g.bytes += r.Size() + 64
}

// consumed records that the group takes ingest slot up to next.
func (g *Group) consumed(slot int32, next int64) {
	if g.Ingest == nil {
		g.Ingest = make(map[int32]int64)
	}
	g.Ingest[slot] = next
}

// addMarks adds the ingest marks: the next offset of every ingest slot the group
// consumed from, in the same transaction as the changes, in slot order (the
// core's output depends on its inputs only, never on a map's order).
func (g *Group) addMarks(epoch uint64, now time.Time) {
	for _, slot := range slices.Sorted(maps.Keys(g.Ingest)) {
		g.add(kv.Record{Kind: kv.KindMark, Slot: slot, Epoch: epoch, Ingest: &kv.Source{Slot: slot, Offset: g.Ingest[slot]}})
	}
	g.Began = now
}

// StoreWrite is what the store applies once the group committed: its changes, the
// next offset of every slot it wrote to and the ingest offsets it consumed,
// in one write.
func (g *Group) StoreWrite() kv.Write {
	b := kv.Write{Changes: make([]kv.Change, 0, len(g.Records)), Offsets: make(map[int32]int64), Ingest: g.Ingest, Clock: g.clock}
	for i, r := range g.Records {
		if next := g.Offsets[i] + 1; next > b.Offsets[r.Slot] {
			b.Offsets[r.Slot] = next
		}
		if r.Kind == kv.KindChange {
			b.Changes = append(b.Changes, r.Change)
		}
	}
	return b
}

// pending is a key's speculative state: written by a group not yet applied
// to the store.
type pending struct {
	read  kv.Read
	group uint64
}
