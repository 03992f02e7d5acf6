package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// get k: a linearizable Get.
func handleGet(h *harness, t *testing.T, d *datadriven.TestData) {
	h.request(&Request{Op: OpGet, Key: []byte(d.CmdArgs[0].Key)})
}
