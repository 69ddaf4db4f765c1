package bench

import (
	"errors"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writePlot draws deliveries/s (top) and latency percentiles (bottom)
// over the run's seconds into a PNG.
func writePlot(path string, res *Result) error {
	if len(res.Series) == 0 {
		return errors.New("no samples to plot (the run was shorter than a second)")
	}
	rate := plot.New()
	rate.Title.Text = res.Name + ": deliveries/s"
	rate.X.Label.Text = "s"
	rate.Y.Label.Text = "deliveries/s"
	pts := make(plotter.XYs, len(res.Series))
	for i, p := range res.Series {
		pts[i] = plotter.XY{X: p.T, Y: p.DeliveriesPerS}
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{B: 200, A: 255}
	rate.Add(line, plotter.NewGrid())

	lat := plot.New()
	lat.Title.Text = "latency percentiles per second"
	lat.X.Label.Text = "s"
	lat.Y.Label.Text = "ms"
	lat.Add(plotter.NewGrid())
	series := []struct {
		name string
		get  func(Point) float64
		c    color.RGBA
	}{
		{"p50", func(p Point) float64 { return p.P50 }, color.RGBA{G: 150, A: 255}},
		{"p90", func(p Point) float64 { return p.P90 }, color.RGBA{R: 200, G: 150, A: 255}},
		{"p99", func(p Point) float64 { return p.P99 }, color.RGBA{R: 220, A: 255}},
		{"p99.9", func(p Point) float64 { return p.P999 }, color.RGBA{R: 120, B: 120, A: 255}},
	}
	for _, s := range series {
		xy := make(plotter.XYs, len(res.Series))
		for i, p := range res.Series {
			xy[i] = plotter.XY{X: p.T, Y: s.get(p)}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = s.c
		lat.Add(l)
		lat.Legend.Add(s.name, l)
	}
	lat.Legend.Top = true

	const w, h = 20 * vg.Centimeter, 24 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{rate}, {lat}}, tiles, dc)
	rate.Draw(canvases[0][0])
	lat.Draw(canvases[1][0])
	return savePNG(path, img)
}
