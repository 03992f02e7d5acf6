package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// get-many k...: a linearizable GetMany.
func handleGetMany(h *harness, t *testing.T, d *datadriven.TestData) {
	req := &Request{Op: OpGetMany}
	for _, a := range d.CmdArgs {
		req.Keys = append(req.Keys, []byte(a.Key))
	}
	h.request(req)
}
