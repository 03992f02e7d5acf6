package core

import (
	"fmt"
	"sort"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// state: the core's state, held replies, whether a group is in flight,
// store writes so far, and the store's keys.
func handleState(h *harness, t *testing.T, d *datadriven.TestData) {
	fmt.Fprintf(h.out, "state %s held %d busy %v applies %d\n", h.c.State(), h.c.Held(), h.c.Busy(), h.c.Applies())
	keys := make([]string, 0, len(h.store))
	for k := range h.store {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h.out, "store %s\n", readString(k, h.store[k]))
	}
}
