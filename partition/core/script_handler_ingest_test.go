package core

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/kv"
)

// ingest [gen=N], one record a line as input: slot/offset key=value |
// key=~ (a remove) | key=big:N (a value of N bytes) | key!why (a record
// that does not read): a delivery of the ingest consumer (of the current
// generation unless gen says).
func handleIngest(h *harness, t *testing.T, d *datadriven.TestData) {
	req := &Request{Op: OpIngest, Gen: h.ingestGen}
	for _, a := range d.CmdArgs {
		if a.Key == "gen" {
			req.Gen = uint64(atoi(t, a.Vals[0]))
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		pos, rec, _ := strings.Cut(line, " ")
		s, o, _ := strings.Cut(pos, "/")
		r := kv.IngestRecord{Slot: int32(atoi(t, s)), Offset: int64(atoi(t, o))}
		switch {
		case strings.Contains(rec, "!"):
			k, why, _ := strings.Cut(rec, "!")
			r.Key, r.Err = []byte(k), fmt.Errorf("%w: %s", kv.ErrInvalid, why)
		default:
			k, v, _ := strings.Cut(rec, "=")
			r.Key = []byte(k)
			if v == "~" {
				r.Remove = true
			} else if strings.HasPrefix(v, "big:") {
				r.Value = make([]byte, atoi(t, v[4:]))
			} else {
				r.Value = []byte(v)
			}
		}
		req.Ingest = append(req.Ingest, r)
	}
	h.request(req)
}
