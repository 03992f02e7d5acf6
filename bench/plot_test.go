package bench

import (
	"bytes"
	"strings"
	"testing"
)

// Issue 28.12: the plot has axes with ticks, their labels and a legend (it
// had two bare lines).
func TestPlotHasAxesAndLegend(t *testing.T) {
	r := &Result{Config: Config{Workload: "get", Concurrency: 4}, OpsPerSec: 900, P99: 2.5,
		Timeline: []Second{{OpsPerSec: 800, P99: 2}, {OpsPerSec: 950, P99: 3}, {OpsPerSec: 900, P99: 2.5}}}
	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "seconds into the run", "p99 latency (ms)", "ops/s in each second", "p99 of each second", ">800<"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("the plot has no %q", want)
		}
	}
}
