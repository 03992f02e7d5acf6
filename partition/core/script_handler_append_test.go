package core

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/wal"
)

// append-ok: the group in flight committed, at the fake log's next offsets.
func handleAppendOK(h *harness, t *testing.T, d *datadriven.TestData) {
	g := h.take(t)
	offs := make([]int64, len(g.Records))
	for i, r := range g.Records {
		offs[i] = h.log[r.Slot]
		h.log[r.Slot]++
	}
	h.d.Appended(g.N, offs, nil)
}

// append-fail [permanent]: the group in flight did not commit (permanent:
// it never can, as a record too large for the log).
func handleAppendFail(h *harness, t *testing.T, d *datadriven.TestData) {
	g := h.take(t)
	err := fmt.Errorf("%w: refused", wal.ErrNotCommitted)
	if d.HasArg("permanent") {
		err = fmt.Errorf("%w (%w): MESSAGE_TOO_LARGE", wal.ErrNotCommitted, wal.ErrPermanent)
	}
	h.d.Appended(g.N, nil, err)
}

// append-unknown: the group in flight's commit has an unknown outcome.
func handleAppendUnknown(h *harness, t *testing.T, d *datadriven.TestData) {
	g := h.take(t)
	h.d.Appended(g.N, nil, fmt.Errorf("%w: the broker went silent", wal.ErrCommitUnknown))
}
