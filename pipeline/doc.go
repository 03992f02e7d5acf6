// Package pipeline holds the stages a write passes through inside its
// partition's goroutine, and the line monitor that releases results in order.
//
//	if err := pipeline.ValidateBatch(entries); err != nil { ... } // InvalidArgument
//	ts := clock.Now()                                              // monotonic HLC stamp
//	lm.Hold(group, deliver)                                        // released in order
//	lm.Release(committedGroup)                                     // once durable
//
// Nothing here starts goroutines or does I/O: the partition's loop drives it.
package pipeline
