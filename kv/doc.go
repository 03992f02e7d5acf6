// Package kv is sluice's data model: what a client writes (Entry), what a
// key holds (Value), the one change type every layer shares (Change: the
// store applies it, the write-ahead log records it with its Meta), the
// records an ingest topic delivers, and the limits every write is checked
// against.
//
//	if err := kv.ValidateBatch(entries); err != nil { ... } // wraps kv.ErrInvalid: InvalidArgument
//	c := kv.Change{Key: k, Value: v, Version: 3, Timestamp: ts}
//	rec := kv.Record{Kind: kv.KindChange, Change: c, Epoch: 7}
//
// It imports nothing of sluice: every other package may use it.
package kv
