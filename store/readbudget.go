package store

import "sync/atomic"

// A ReadBudget bounds the bytes of values that reads copy out of stores for
// one request (a GetMany's response limit): a read takes each value's size
// from it before it copies the value, and stops at the first value that
// does not fit, so a request naming many large values never holds more than
// the budget of them, however many keys it names. One ReadBudget may be
// shared by the reads of many partitions, in parallel. A nil *ReadBudget
// bounds nothing.
type ReadBudget struct {
	left atomic.Int64
}

// NewReadBudget returns a budget of n bytes.
func NewReadBudget(n int) *ReadBudget {
	b := &ReadBudget{}
	b.left.Store(int64(n))
	return b
}

// Left is the bytes not taken yet.
func (b *ReadBudget) Left() int {
	if b == nil {
		return int(^uint(0) >> 1)
	}
	return int(b.left.Load())
}

// take takes n bytes, or nothing and false if fewer are left.
func (b *ReadBudget) take(n int) bool {
	if b == nil || n == 0 {
		return true
	}
	for {
		left := b.left.Load()
		if int64(n) > left {
			return false
		}
		if b.left.CompareAndSwap(left, left-int64(n)) {
			return true
		}
	}
}
