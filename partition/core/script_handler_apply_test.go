package core

import (
	"errors"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// apply [fail]: with manual-apply, the oldest queued store write happens
// (or fails: a full disk).
func handleApply(h *harness, t *testing.T, d *datadriven.TestData) {
	var err error
	if d.HasArg("fail") {
		err = errors.New("disk full")
	}
	h.failNext = err
	if !h.d.ApplyNext() {
		t.Fatal("nothing to apply")
	}
}
