// Package clock is a partition's hybrid-logical clock. It reads no clock of
// its own: the caller passes the wall time, so the partition core that owns
// it stays deterministic.
//
//	c := clock.New(floor)          // floor: the highest stamp persisted or replayed
//	ts := c.Next(time.Now())       // unique, strictly increasing
//	clock.Wall(ts)                 // back to wall time (ms precision)
package clock

import "time"

// HLC is a hybrid-logical clock. A stamp is wall milliseconds shifted left 16
// bits plus a 16-bit logical counter, so stamps order like wall time, stay
// unique and strictly increase even when the wall clock stalls or steps back.
// Not safe for concurrent use: one partition goroutine owns it.
type HLC struct {
	last uint64
}

// New returns a clock that never goes below floor.
func New(floor uint64) *HLC { return &HLC{last: floor} }

// Next returns a stamp greater than every stamp before it, at wall time now.
func (c *HLC) Next(now time.Time) uint64 {
	wall := uint64(now.UnixMilli()) << 16
	if wall > c.last {
		c.last = wall
	} else {
		c.last++
	}
	return c.last
}

// Observe raises the clock to at least ts (a stamp seen in replay).
func (c *HLC) Observe(ts uint64) {
	if ts > c.last {
		c.last = ts
	}
}

// Last is the newest stamp handed out or observed.
func (c *HLC) Last() uint64 { return c.last }

// Wall converts a stamp back to wall time (millisecond precision).
func Wall(ts uint64) time.Time { return time.UnixMilli(int64(ts >> 16)) }

// Expiry turns a TTL into an absolute expiry (unix ms) from a write's stamp;
// 0 for no TTL.
func Expiry(ts uint64, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	return uint64(Wall(ts).Add(ttl).UnixMilli())
}
