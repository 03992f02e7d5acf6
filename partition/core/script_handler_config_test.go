package core

import (
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
)

// config [lease=D] [window=N] [max-group-bytes=N] [range=F-T] [manual-apply]
// [stages] (the pipeline's YAML as input): a new core and driver with that
// configuration, started (its first Ready: the restore).
func handleConfig(h *harness, t *testing.T, d *datadriven.TestData) {
	out := h.out
	*h = *newHarness()
	for _, a := range d.CmdArgs {
		v := ""
		if len(a.Vals) > 0 {
			v = a.Vals[0]
		}
		switch a.Key {
		case "lease":
			h.cfg.Lease = dur(t, v)
		case "window":
			h.cfg.WindowSize = atoi(t, v)
		case "max-group-bytes":
			h.cfg.MaxGroupBytes = atoi(t, v)
		case "range":
			from, to, _ := strings.Cut(v, "-")
			h.cfg.Range = keyspace.Range{From: int32(atoi(t, from)), To: int32(atoi(t, to))}
		case "manual-apply":
			h.manual = true
		case "stages":
			stages, err := pipeline.NewRegistry().ParseConfig([]byte(d.Input))
			if err != nil {
				t.Fatal(err)
			}
			h.cfg.Stages = stages
		default:
			t.Fatalf("config: unknown %s", a.Key)
		}
	}
	h.c = New(h.cfg)
	h.d = NewDriver(h.c, h, nil, h, h.manual)
	h.t, h.out = t, out
	h.d.Start()
}
