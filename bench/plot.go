package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteSVG plots the run's timeline: ops/s (blue, left axis) and p99 latency
// (red, right axis) per second.
func (r *Result) WriteSVG(w io.Writer) error {
	const width, height, pad = 720, 320, 48
	n := len(r.Timeline)
	if n == 0 {
		return fmt.Errorf("bench: no timeline to plot")
	}
	maxOps, maxP99 := 1.0, 0.001
	for _, s := range r.Timeline {
		maxOps, maxP99 = max(maxOps, s.OpsPerSec), max(maxP99, s.P99)
	}
	x := func(i int) float64 { return pad + float64(i)*float64(width-2*pad)/float64(max(n-1, 1)) }
	y := func(v, top float64) float64 { return height - pad - v/top*float64(height-2*pad) }
	line := func(val func(Second) float64, top float64) string {
		var pts []string
		for i, s := range r.Timeline {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(val(s), top)))
		}
		return strings.Join(pts, " ")
	}
	_, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
<text x="%d" y="20">sluice bench %s: %.0f ops/s, p99 %.2f ms (concurrency %d)</text>
<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>
<text x="4" y="%d" fill="#1f5fbf">%.0f ops/s</text><text x="%d" y="%d" fill="#c0392b" text-anchor="end">p99 %.1f ms</text>
<text x="%d" y="%d" text-anchor="end">%d s</text>
<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="%s"/>
<polyline fill="none" stroke="#c0392b" stroke-width="2" points="%s"/>
</svg>
`, width, height, pad, r.Config.Workload, r.OpsPerSec, r.P99, r.Config.Concurrency,
		pad, height-pad, width-pad, height-pad,
		pad-6, maxOps, width-4, pad-6, maxP99,
		width-pad, height-pad+16, n,
		line(func(s Second) float64 { return s.OpsPerSec }, maxOps),
		line(func(s Second) float64 { return s.P99 }, maxP99))
	return err
}
