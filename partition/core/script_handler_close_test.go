package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// close: the partition is closed gracefully.
func handleClose(h *harness, t *testing.T, d *datadriven.TestData) { h.d.Close() }

// kill: the partition stops at once.
func handleKill(h *harness, t *testing.T, d *datadriven.TestData) { h.d.Kill() }
