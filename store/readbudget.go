package store

import (
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/kv"
)

// A ReadBudget bounds the bytes of values that reads copy out of stores for
// one request (a GetMany's response limit): a read takes each value's size
// from it before it copies the value, and stops at the first value that
// does not fit, so a request naming many large values never holds more than
// the budget of them, however many keys it names. A value expired at the
// read's time takes nothing: it is answered absent, without its bytes. One ReadBudget may be
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

// Admit is admit, for reads of state held outside the store (a cache).
func (b *ReadBudget) Admit(r kv.Read, now time.Time) (kv.Read, bool) { return b.admit(r, now) }

// admit is what a read within b hands out of the stored state r at now: an
// expired value is absent (its version, clock stamp and expiry kept) and
// takes nothing, as no byte of it is answered; any other value takes its
// size, or nothing and false if it does not fit. A nil b admits r as stored.
func (b *ReadBudget) admit(r kv.Read, now time.Time) (kv.Read, bool) {
	if b == nil {
		return r, true
	}
	if r.Found && r.Value.Expired(now) {
		return kv.Read{Value: kv.Value{Version: r.Value.Version, Timestamp: r.Value.Timestamp, ExpiresAt: r.Value.ExpiresAt}}, true
	}
	if !b.take(len(r.Value.Data)) {
		return kv.Read{}, false
	}
	return r, true
}
