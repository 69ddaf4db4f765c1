package bench

import (
	"errors"
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// panel is one chart of the plot: named lines over the run's seconds.
type panel struct {
	title string // with its unit
	lines []plotLine
}

type plotLine struct {
	name string
	c    color.RGBA
	pts  plotter.XYs
}

var (
	blue   = color.RGBA{B: 200, A: 255}
	green  = color.RGBA{G: 150, A: 255}
	orange = color.RGBA{R: 200, G: 150, A: 255}
	red    = color.RGBA{R: 220, A: 255}
	purple = color.RGBA{R: 120, B: 120, A: 255}
	grey   = color.RGBA{R: 110, G: 110, B: 110, A: 255}
)

// errNothingToPlot: no panel has a sample to draw.
var errNothingToPlot = errors.New("nothing to plot")

// plotPanels chooses what to draw for a scenario: traffic scenarios their
// deliveries and latency, the others the connections up; every scenario
// CPU, and with -pid the server's RSS. Levels (connections, RSS) are drawn
// at every sample; rates (deliveries, latency, CPU) only for seconds that
// lie within one phase of the run.
func plotPanels(res *Result) []panel {
	whole := make([]bool, len(res.Series))
	server := false // -pid given and readable
	for i, p := range res.Series {
		whole[i] = res.wholeSecond(i)
		server = server || p.ServerRSS > 0
	}
	pts := func(rate bool, get func(Point) (float64, bool)) plotter.XYs {
		var xy plotter.XYs
		for i, p := range res.Series {
			if v, ok := get(p); ok && (!rate || whole[i]) {
				xy = append(xy, plotter.XY{X: p.T, Y: v})
			}
		}
		return xy
	}
	always := func(f func(Point) float64) func(Point) (float64, bool) {
		return func(p Point) (float64, bool) { return f(p), true }
	}
	withServer := func(f func(Point) float64) func(Point) (float64, bool) {
		return func(p Point) (float64, bool) { return f(p), p.ServerRSS > 0 }
	}
	var ps []panel
	switch res.Scenario {
	case "broadcast", "unicast", "presence", "abuse", "failover":
		ps = append(ps, panel{title: "deliveries/s", lines: []plotLine{
			{"deliveries/s", blue, pts(true, always(func(p Point) float64 { return p.DeliveriesPerS }))},
		}})
		lat := panel{title: "latency of each second's deliveries (ms)"}
		for _, l := range []struct {
			name string
			c    color.RGBA
			get  func(Point) float64
		}{
			{"p50", green, func(p Point) float64 { return p.P50 }},
			{"p90", orange, func(p Point) float64 { return p.P90 }},
			{"p99", red, func(p Point) float64 { return p.P99 }},
			{"p99.9", purple, func(p Point) float64 { return p.P999 }},
		} {
			lat.lines = append(lat.lines, plotLine{l.name, l.c, pts(true, always(l.get))})
		}
		ps = append(ps, lat)
	default:
		ps = append(ps, panel{title: "connections up", lines: []plotLine{
			{"connections up", blue, pts(false, always(func(p Point) float64 { return float64(p.Up) }))},
		}})
	}
	cpu := panel{title: "CPU (cores)"}
	if server {
		cpu.lines = append(cpu.lines, plotLine{"server", red, pts(true, withServer(func(p Point) float64 { return p.ServerCPU }))})
	}
	cpu.lines = append(cpu.lines, plotLine{"bench", grey, pts(true, always(func(p Point) float64 { return p.BenchCPU }))})
	ps = append(ps, cpu)
	if server {
		ps = append(ps, panel{title: "server RSS (MiB)", lines: []plotLine{
			{"server RSS", blue, pts(false, withServer(func(p Point) float64 { return float64(p.ServerRSS) / mib }))},
		}})
	}
	return ps
}

// wholeSecond reports whether sample i's second (since the sample before)
// lies within one phase of the run. Without phases every sample counts.
func (res *Result) wholeSecond(i int) bool {
	if len(res.Phases) == 0 {
		return true
	}
	from, to := 0.0, res.Series[i].T
	if i > 0 {
		from = res.Series[i-1].T
	}
	for _, ph := range res.Phases {
		if ph.Start <= from && to <= ph.End {
			return true
		}
	}
	return false
}

func hasPoints(ps []panel) bool {
	for _, p := range ps {
		for _, l := range p.lines {
			if len(l.pts) > 0 {
				return true
			}
		}
	}
	return false
}

// buildPlots turns panels into plots sharing one time axis, from 0 to the
// run's end, each y axis from 0, the phases' starts marked by dashed lines.
func buildPlots(res *Result, ps []panel) ([]*plot.Plot, error) {
	end := 0.0
	for _, p := range res.Series {
		end = max(end, p.T)
	}
	if n := len(res.Phases); n > 0 {
		end = max(end, res.Phases[n-1].End)
	}
	var plots []*plot.Plot
	for i, pn := range ps {
		p := plot.New()
		p.Title.Text = pn.title
		if i == 0 {
			p.Title.Text = res.Name + ": " + pn.title
		}
		if i == len(ps)-1 {
			p.X.Label.Text = "s since the run began" + phaseLegend(res.Phases)
		}
		p.Add(plotter.NewGrid())
		ymax := 0.0
		for _, l := range pn.lines {
			if len(l.pts) == 0 {
				continue
			}
			line, dots, err := plotter.NewLinePoints(l.pts)
			if err != nil {
				return nil, err
			}
			line.Color = l.c
			dots.Color = l.c
			dots.GlyphStyle.Radius = vg.Points(1.5)
			dots.GlyphStyle.Shape = draw.CircleGlyph{}
			p.Add(line, dots)
			for _, xy := range l.pts {
				ymax = max(ymax, xy.Y)
			}
		}
		if ymax <= 0 {
			ymax = 1
		}
		p.X.Min, p.X.Max = 0, max(end, 1)
		p.Y.Min, p.Y.Max = 0, 1.08*ymax
		for _, ph := range res.Phases[min(1, len(res.Phases)):] {
			mark, err := plotter.NewLine(plotter.XYs{{X: ph.Start, Y: 0}, {X: ph.Start, Y: p.Y.Max}})
			if err != nil {
				return nil, err
			}
			mark.Color = grey
			mark.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			p.Add(mark)
		}
		plots = append(plots, p)
	}
	return plots, nil
}

// phaseLegend names the phases and when each began, for the time axis.
func phaseLegend(phases []Span) string {
	if len(phases) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; dashed: ")
	for i, ph := range phases[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s from %.1f s", ph.Name, ph.Start)
	}
	return b.String()
}

// writePlot draws the panels one above the other into a PNG. It returns
// errNothingToPlot, writing nothing, when no panel has a sample: samples
// are taken once a second, so a run of less than a second has none.
func writePlot(path string, res *Result) error {
	ps := plotPanels(res)
	if !hasPoints(ps) {
		return errNothingToPlot
	}
	plots, err := buildPlots(res, ps)
	if err != nil {
		return err
	}
	const w, rowH, legendH = 20 * vg.Centimeter, 7 * vg.Centimeter, 14
	img := vgimg.New(w, rowH*vg.Length(len(plots)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
		if len(ps[i].lines) > 1 {
			p.Title.Padding = vg.Points(legendH + 4) // room for the legend under the title
		}
	}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		c := canvases[i][0]
		p.Draw(c)
		if len(ps[i].lines) > 1 {
			top := c.Max.Y - p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y - vg.Points(legendH)/2 - 2
			drawLegendRow(c, top, ps[i].lines)
		}
	}
	return savePNG(path, img)
}

// drawLegendRow draws a panel's legend as one centred row at height y,
// between its title and its data, where it covers no line.
func drawLegendRow(c draw.Canvas, y vg.Length, lines []plotLine) {
	sty := text.Style{Font: font.From(plot.DefaultFont, 11), Handler: plot.DefaultTextHandler, YAlign: draw.YCenter}
	const swatch, gap = vg.Length(18), vg.Length(14)
	width := vg.Length(0)
	for _, l := range lines {
		width += swatch + 4 + sty.Width(l.name) + gap
	}
	x := (c.Min.X+c.Max.X)/2 - (width-gap)/2
	for _, l := range lines {
		c.StrokeLine2(draw.LineStyle{Color: l.c, Width: vg.Points(2)}, x, y, x+swatch, y)
		x += swatch + 4
		c.FillText(sty, vg.Point{X: x, Y: y}, l.name)
		x += sty.Width(l.name) + gap
	}
}
