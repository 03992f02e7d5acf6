// Package core is the partition's logic as a pure state machine, in the
// shape of etcd-io/raft's RawNode: it takes inputs and returns what to do. It
// has no goroutines, channels, clock reads or I/O; the partition's loop
// (package partition) owns those and hands the inputs to the Driver
// (driver.go), which steps the core and carries out its Ready through the
// loop's Effects. The simulator and the scripts drive the same Driver with
// simulated effects, so the Ready contract exists once.
//
//	c := core.New(cfg)                 // restoring: Ready asks for a restore
//	c.Request(now, req)                // a client request, with the values its caller read
//	c.Appended(now, n, offsets, err)   // the outcome of group n's append
//	c.Applied(now, n, err)             // group n is in the store
//	c.Restored(now, r)                 // a restore finished
//	c.Tick(now)                        // time passed (lease wait, drain timeout)
//	rd := c.Ready()                    // replies, the group to append, store batches, ...
//
//	d := core.NewDriver(c, store, cache, effects, false)
//	d.Step(req)                        // completes req's reads, steps the core, carries out the Ready
//
// The rules the core keeps (DESIGN.md):
//   - replies leave in the order the requests came (the line monitor), each
//     only once everything it rests on is durable: a write once its group
//     committed, a read once every write it may have seen committed;
//   - a read of committed state answers at once only within the read lease:
//     a commit (of any group, or a heartbeat) that began less than Lease ago
//     proves no newer owner can be serving yet;
//   - an answer marked not-applied (ErrAppendFailed over wal.ErrNotCommitted,
//     ErrStopped, ErrInboxFull...) is given only when the write certainly did
//     not commit; a group handed to the appender whose outcome is unknown
//     fails its requests with wal.ErrCommitUnknown.
package core
