package bench

import (
	"context"
	"testing"
	"time"
)

// lateTimer is a context whose deadline passed while its timer has not yet
// fired: what a loaded machine shows a run's clients for a moment.
type lateTimer struct {
	context.Context
	deadline time.Time
}

func (c lateTimer) Deadline() (time.Time, bool) { return c.deadline, true }

func TestACallAfterTheRunsDeadlineIsNotAnError(t *testing.T) {
	late := lateTimer{context.Background(), time.Now().Add(-time.Millisecond)}
	if late.Err() != nil {
		t.Fatal("the late context already says it is done: the test shows nothing")
	}
	if !over(late) {
		t.Error("a run whose deadline passed is not over until its timer fires: the calls it fails meanwhile count as errors")
	}
	if over(lateTimer{context.Background(), time.Now().Add(time.Hour)}) {
		t.Error("a run an hour before its deadline is over")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !over(ctx) {
		t.Error("a cancelled run is not over")
	}
}
