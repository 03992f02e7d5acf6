package clock

import (
	"testing"
	"time"
)

func TestMonotonicWhenWallStallsOrStepsBack(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_000)
	c := New(0)
	a := c.Next(wall)
	b := c.Next(wall)
	d := c.Next(wall.Add(-time.Hour)) // the wall clock steps back
	if !(a < b && b < d) {
		t.Fatalf("stamps not increasing: %d %d %d", a, b, d)
	}
	wall = time.UnixMilli(1_800_000_000_000)
	e := c.Next(wall)
	if e != uint64(1_800_000_000_000)<<16 || !Wall(e).Equal(wall) {
		t.Fatalf("clock did not follow the wall forward: %d", e)
	}
}

func TestFloorAndObserve(t *testing.T) {
	now := time.Now()
	floor := uint64(now.Add(time.Hour).UnixMilli()) << 16
	c := New(floor)
	if ts := c.Next(now); ts != floor+1 {
		t.Fatalf("Next %d, want floor+1 = %d", ts, floor+1)
	}
	c.Observe(floor + 100)
	if ts := c.Next(now); ts != floor+101 {
		t.Fatalf("Next after Observe = %d", ts)
	}
}

func TestExpiry(t *testing.T) {
	ts := uint64(1_700_000_000_000) << 16
	if got := Expiry(ts, 0); got != 0 {
		t.Fatalf("no TTL: %d", got)
	}
	if got := Expiry(ts, 90*time.Second); got != 1_700_000_090_000 {
		t.Fatalf("90 s TTL: %d", got)
	}
}
