package bench

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteSVG plots the run's timeline as SVG (gonum/plot): throughput above,
// p99 latency below, per second of the run, each with its axes, ticks,
// grid and legend.
func (r *Result) WriteSVG(w io.Writer) error {
	if len(r.Timeline) == 0 {
		return fmt.Errorf("bench: no timeline to plot")
	}
	unit := "ops/s"
	if r.Config.Batched() {
		unit = "calls/s"
	}
	ops := make(plotter.XYs, len(r.Timeline))
	p99 := make(plotter.XYs, len(r.Timeline))
	for i, s := range r.Timeline {
		ops[i] = plotter.XY{X: float64(i + 1), Y: s.OpsPerSec}
		p99[i] = plotter.XY{X: float64(i + 1), Y: s.P99}
	}
	top, err := panel(fmt.Sprintf("sluice bench %s: %.0f %s, p99 %.2f ms (concurrency %d)", r.Config.Workload, r.OpsPerSec, unit, r.P99, r.Config.Concurrency),
		unit, unit+" in each second", ops, color.RGBA{R: 0x1f, G: 0x5f, B: 0xbf, A: 0xff})
	if err != nil {
		return err
	}
	bottom, err := panel("", "p99 latency (ms)", "p99 of each second", p99, color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff})
	if err != nil {
		return err
	}
	bottom.X.Label.Text = "seconds into the run"
	c := vgsvg.New(8*vg.Inch, 6*vg.Inch)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter,
		PadLeft: 2 * vg.Millimeter, PadRight: 2 * vg.Millimeter}
	top.Draw(tiles.At(dc, 0, 0))
	bottom.Draw(tiles.At(dc, 0, 1))
	_, err = c.WriteTo(w)
	return err
}

// panel is one plot of a series against the run's seconds.
func panel(title, ylabel, legend string, pts plotter.XYs, col color.Color) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color = col
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(legend, l)
	p.Legend.Top = true
	return p, nil
}
