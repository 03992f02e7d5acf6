// Package partition is one partition: the slot range it owns, served by one
// goroutine that owns all of its state.
//
//	p := partition.Start(partition.Config{Config: core.Config{ID: 1, Range: r, Slots: 16, Epoch: e},
//		Store: st, WAL: log}) // log: a wal.Log, the storage mode's
//	defer p.Close()
//	res, err := p.Upsert(ctx, entries) // acknowledged once its transaction committed
//	r, err := p.Get(ctx, key)          // linearizable
//
// The partition's logic is package core, a pure state machine; this package
// is the thin loop around it that does all the I/O. Files: partition.go (the
// API: requests go through a bounded inbox), loop.go (the goroutine's select
// loop: it owns the channels and the time and hands each input to the
// core's Driver), effects.go (what the Driver's Ready asks of the loop:
// replies, the group to append, store writes), reads.go and values.go (current values for writes
// without store reads on the loop), restore.go (fence + replay), state.go (the one value
// that publishes the partition's phase and restore progress), ingest.go
// (the consumer of the ingest topic), standby.go (a read-only copy that tails
// the log), view.go (reads of committed state from any goroutine).
//
// The goroutine never waits for Kafka: the core computes on committed state
// plus an overlay of pending changes, the loop hands groups of change records
// to a flusher (one transaction each, the next group building meanwhile), and
// the core's line monitor releases replies in order once their group
// committed — before the group is written to the store, which happens while
// the next transaction is already on its way.
package partition
