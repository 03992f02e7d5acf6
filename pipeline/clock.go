package pipeline

import "time"

// Clock is a partition's hybrid-logical clock. A stamp is wall milliseconds
// shifted left 16 bits plus a 16-bit logical counter, so stamps order like
// wall time, stay unique and strictly increase even when the wall clock stalls
// or steps back. Not safe for concurrent use: one partition goroutine owns it.
type Clock struct {
	last uint64
	now  func() time.Time
}

// NewClock returns a clock that never goes below floor (the highest stamp the
// partition persisted or replayed).
func NewClock(floor uint64) *Clock { return &Clock{last: floor, now: time.Now} }

// Now returns a stamp greater than every stamp before it.
func (c *Clock) Now() uint64 {
	wall := uint64(c.now().UnixMilli()) << 16
	if wall > c.last {
		c.last = wall
	} else {
		c.last++
	}
	return c.last
}

// Observe raises the clock to at least ts (a stamp seen in replay).
func (c *Clock) Observe(ts uint64) {
	if ts > c.last {
		c.last = ts
	}
}

// Last is the newest stamp handed out or observed.
func (c *Clock) Last() uint64 { return c.last }

// WallTime converts a stamp back to wall time (millisecond precision).
func WallTime(ts uint64) time.Time { return time.UnixMilli(int64(ts >> 16)) }
