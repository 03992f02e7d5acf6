package core

import (
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/kv"
)

// store k=v@version ... (as input; v ~: absent): the committed state before
// the partition starts.
func handleStore(h *harness, t *testing.T, d *datadriven.TestData) {
	for _, f := range strings.Fields(d.Input) {
		k, rest, _ := strings.Cut(f, "=")
		v, ver, _ := strings.Cut(rest, "@")
		h.store[k] = kv.Read{Value: kv.Value{Data: []byte(v), Version: uint64(atoi(t, ver))}, Found: v != "~"}
	}
}
