package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// tick D: time moves on by D, and the core is told.
func handleTick(h *harness, t *testing.T, d *datadriven.TestData) {
	h.now = h.now.Add(dur(t, d.CmdArgs[0].Key))
	h.d.Tick()
}
