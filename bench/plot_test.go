package bench

import (
	"os"
	"strings"
	"testing"
	"time"

	"hangoutd/loop"
)

// idle and churn draw what they have, connections up, CPU and the
// server's RSS, each with something above zero, on axes from 0.
func TestPlotIdleAndChurnDrawWhatTheyHave(t *testing.T) {
	url := startServer(t, func(c *loop.Config) { c.PingInterval = 100 * time.Millisecond })
	idle := small("idle", url, 50)
	churn := small("churn", url, 50)
	churn.Rate = 20
	for _, cfg := range []*Config{idle, churn} {
		t.Run(cfg.Scenario, func(t *testing.T) {
			// Three seconds hold at least one whole second of
			// the phase even after a stall; the in-process server is this
			// process.
			cfg.Duration, cfg.PIDs = 3*time.Second, []int{os.Getpid()}
			res, code, err := RunScenario(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mustOK(t, res, code)
			ps := plotPanels(res)
			var titles []string
			for _, p := range ps {
				titles = append(titles, p.title)
				nonzero := false
				for _, l := range p.lines {
					if len(l.pts) == 0 {
						t.Errorf("%s: %s: no points (series %+v, phases %+v)", p.title, l.name, res.Series, res.Phases)
					}
					for _, xy := range l.pts {
						nonzero = nonzero || xy.Y > 0
					}
				}
				if !nonzero {
					t.Errorf("%s: every point is 0", p.title)
				}
			}
			if got := strings.Join(titles, "|"); got != "connections up|CPU (cores)|server RSS (MiB)" {
				t.Fatalf("panels %s", got)
			}
			plots, err := buildPlots(res, ps)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range plots {
				if p.Y.Min != 0 || p.Y.Max <= 0 || p.X.Min != 0 {
					t.Errorf("%s: y from %v to %v, x from %v", ps[i].title, p.Y.Min, p.Y.Max, p.X.Min)
				}
			}
		})
	}
}

// A rate is drawn only for a second that lies within one phase: the one
// that holds the connecting and the first traffic, and the one that holds
// the last traffic and the grace, would show dips that are not there.
// Levels are drawn at every sample.
func TestPlotDrawsWholeSecondsOnAxesFromZero(t *testing.T) {
	res := &Result{Scenario: "broadcast", Phases: []Span{{"connect", 0, 0.3}, {"traffic", 0.3, 4.5}, {"grace", 4.5, 4.8}}}
	for _, tt := range []float64{1, 2, 3, 4, 4.7} {
		res.Series = append(res.Series, Point{T: tt, Up: 10, DeliveriesPerS: 100, BenchCPU: 0.5, ServerCPU: 0.5, ServerRSS: 10 << 20})
	}
	res.Series[0].DeliveriesPerS, res.Series[4].DeliveriesPerS = 70, 20 // the dips
	ps := plotPanels(res)
	if len(ps) != 4 {
		t.Fatalf("%d panels", len(ps))
	}
	xs := func(l plotLine) (x []float64) {
		for _, xy := range l.pts {
			x = append(x, xy.X)
		}
		return x
	}
	for _, p := range ps[:3] { // deliveries, latency, CPU
		for _, l := range p.lines {
			if got := xs(l); len(got) != 3 || got[0] != 2 || got[2] != 4 {
				t.Errorf("%s %s drawn at %v, want 2, 3, 4", p.title, l.name, got)
			}
		}
	}
	if got := xs(ps[3].lines[0]); len(got) != 5 {
		t.Errorf("RSS drawn at %v, want every sample", got)
	}
	// Every y axis starts at 0, even with all values far above it (and no
	// phase marks, which are drawn from 0).
	res.Phases = nil
	plots, err := buildPlots(res, plotPanels(res))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plots {
		if p.Y.Min != 0 {
			t.Errorf("%s: y axis from %v", p.Title.Text, p.Y.Min)
		}
	}
}
