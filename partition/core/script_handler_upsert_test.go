package core

import (
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/kv"
)

// upsert k=v[@expected] ... [ttl=D], and cas (the same, named for a
// compare-and-set): one Upsert request of those entries; k alone writes an
// empty value.
func handleUpsert(h *harness, t *testing.T, d *datadriven.TestData) {
	req := &Request{Op: OpUpsert}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "ttl":
			for i := range req.Entries {
				req.Entries[i].TTL = dur(t, a.Vals[0])
			}
		default:
			e := kv.Entry{Key: []byte(a.Key)}
			if len(a.Vals) > 0 {
				val, expect, hasExpect := strings.Cut(a.Vals[0], "@")
				e.Value = []byte(val)
				if hasExpect {
					x := uint64(atoi(t, expect))
					e.Expected = &x
				}
			}
			req.Entries = append(req.Entries, e)
		}
	}
	h.request(req)
}
