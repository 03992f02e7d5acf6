package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// prefetch k...: a caller reads keys from the store now, for the next
// request (which the driver then need not read again: "read k again" says
// it did).
func handlePrefetch(h *harness, t *testing.T, d *datadriven.TestData) {
	h.pre = map[string]Read{}
	for _, a := range d.CmdArgs {
		h.pre[a.Key] = Read{Read: h.store[a.Key], OK: true, Seen: h.c.Applies()}
	}
}
