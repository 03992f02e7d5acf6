package core

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// incr k N [ttl=D]: an Increment of k by N.
func handleIncrement(h *harness, t *testing.T, d *datadriven.TestData) {
	req := &Request{Op: OpIncrement, Key: []byte(d.CmdArgs[0].Key), Delta: int64(atoi(t, d.CmdArgs[1].Key))}
	for _, a := range d.CmdArgs[2:] {
		if a.Key == "ttl" {
			req.TTL = dur(t, a.Vals[0])
		}
	}
	h.request(req)
}
