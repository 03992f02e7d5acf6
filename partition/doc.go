// Package partition is one partition: the slot range it owns, served by one
// goroutine that owns all of its state.
//
//	p := partition.Start(partition.Config{ID: 1, Range: r, Slots: 16, Epoch: e, Topic: topics.Changelog(),
//		Store: st, NewAppender: newAppender, Replay: replay})
//	defer p.Close()
//	res, err := p.Upsert(ctx, entries) // acknowledged once its Kafka transaction committed
//	v, found, err := p.Get(ctx, key)   // linearizable
//
// Files: partition.go (the API: requests go through a bounded inbox), loop.go
// (the goroutine's select loop: intake, commits, restores, stop), core.go (the
// state it owns: overlay, groups, line monitor), requests.go (what each request
// computes), sync.go (restore = fence + replay), ingest.go (records of the
// ingest topic), standby.go (a read-only copy that tails the changelog),
// view.go (reads of committed state from any goroutine), prefetch.go and
// versions.go (current values for writes without store reads on the loop).
//
// The goroutine never waits for Kafka: it computes on committed Badger state
// plus an overlay of pending changes, hands groups of change records to a
// flusher (one transaction each, the next group building meanwhile), and the
// line monitor releases replies in order once their group committed —
// before the group is written to Badger, which happens while the next
// transaction is already on its way.
package partition
