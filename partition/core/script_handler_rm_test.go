package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// rm k: a Remove.
func handleRemove(h *harness, t *testing.T, d *datadriven.TestData) {
	h.request(&Request{Op: OpRemove, Key: []byte(d.CmdArgs[0].Key)})
}
