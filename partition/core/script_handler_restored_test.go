package core

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// restored [fenced-ago=D] [skip-lease-wait] [deposed] [ingest=S/O...]: the
// restore the core asked for is done (or found a newer owner).
func handleRestored(h *harness, t *testing.T, d *datadriven.TestData) {
	r := Restore{FencedAt: h.now, Ingest: map[int32]int64{}}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "fenced-ago":
			r.FencedAt = h.now.Add(-dur(t, a.Vals[0]))
		case "skip-lease-wait":
			r.SkipLeaseWait = true
		case "deposed":
			r.Err = fmt.Errorf("%w: a newer epoch wrote the log", ErrDeposed)
		case "ingest":
			for _, v := range a.Vals {
				s, o, _ := strings.Cut(v, "/")
				r.Ingest[int32(atoi(t, s))] = int64(atoi(t, o))
			}
		}
	}
	h.d.Restored(r)
}
