package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	json "github.com/goccy/go-json"
)

// Figure is one named number of a run.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Mark is set by a comparison: "+12.3%" when the figure moved by more
	// than the threshold since the previous result.
	Mark string `json:"mark,omitempty"`
}

// Point is one second of a run, for progress and the plot.
type Point struct {
	T              float64 `json:"t"` // seconds since the scenario started; rates are over the second before
	Up             int     `json:"up"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	P50            float64 `json:"p50_ms"`
	P90            float64 `json:"p90_ms"`
	P99            float64 `json:"p99_ms"`
	P999           float64 `json:"p999_ms"`
	Max            float64 `json:"max_ms"`
	ServerCPU      float64 `json:"server_cpu_util,omitempty"`
	ServerRSS      int64   `json:"server_rss,omitempty"`
	BenchCPU       float64 `json:"bench_cpu_util"`
}

// Span is one phase of a run (connect, traffic, grace ...), in seconds on
// the series' clock.
type Span struct {
	Name  string  `json:"name"`
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
}

// Result is everything one scenario run found.
type Result struct {
	Name         string         `json:"name"` // label in a standard set; the scenario otherwise
	Scenario     string         `json:"scenario"`
	URL          string         `json:"url"`
	Params       map[string]any `json:"params"`
	Started      time.Time      `json:"started"`
	Figures      []Figure       `json:"figures"`
	Series       []Point        `json:"series,omitempty"`
	Phases       []Span         `json:"phases,omitempty"` // on the series' clock
	Goals        []Goal         `json:"goals,omitempty"`
	OK           bool           `json:"ok"`
	Failures     []string       `json:"failures,omitempty"`
	FailureCount int            `json:"failure_count"`
	Warnings     []string       `json:"warnings,omitempty"`
	Notes        []string       `json:"notes,omitempty"` // why a figure is left out
}

// Goal is a target a scenario holds the server to (abuse), and how it did.
type Goal struct {
	Name    string `json:"name"`
	Want    string `json:"want"`
	Got     string `json:"got"`
	Met     bool   `json:"met"`
	Skipped bool   `json:"skipped,omitempty"` // not checked: the run lacked what it needs
}

func (g Goal) verdict() string {
	switch {
	case g.Skipped:
		return "not checked"
	case g.Met:
		return "met"
	}
	return "NOT MET"
}

func (res *Result) add(name string, v float64, unit string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	for i := range res.Figures {
		if res.Figures[i].Name == name {
			res.Figures[i].Value, res.Figures[i].Unit = v, unit
			return
		}
	}
	res.Figures = append(res.Figures, Figure{Name: name, Value: v, Unit: unit})
}

// note records why a figure is missing, for the reader of the report.
func (res *Result) note(format string, args ...any) {
	res.Notes = append(res.Notes, fmt.Sprintf(format, args...))
}

// Get returns a figure's value.
func (res *Result) Get(name string) (float64, bool) {
	for _, f := range res.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// formatValue prints integers as integers and others with 4 significant digits.
func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.3g", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// WriteTable prints the figures as an aligned two-column table.
func (res *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "== %s", res.Name)
	if res.Name != res.Scenario {
		fmt.Fprintf(w, " (%s)", res.Scenario)
	}
	fmt.Fprintf(w, "  %s\n", paramString(res.Params))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, f := range res.Figures {
		fmt.Fprintf(tw, "%s\t%s\t %s\t%s\n", f.Name, formatValue(f.Value), f.Unit, f.Mark)
	}
	tw.Flush()
	for _, n := range res.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, wn := range res.Warnings {
		fmt.Fprintln(w, "warning:", wn)
	}
	for _, g := range res.Goals {
		fmt.Fprintf(w, "goal: %s %s (want %s): %s\n", g.Name, g.Got, g.Want, g.verdict())
	}
	if res.OK {
		fmt.Fprintln(w, "result: ok")
	} else {
		fmt.Fprintf(w, "result: SERVER MISBEHAVED (%d problems)\n", res.FailureCount)
		for _, f := range res.Failures {
			fmt.Fprintln(w, "  -", f)
		}
	}
}

func paramString(p map[string]any) string {
	keys := sortedKeys(p)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(parts, " ")
}

// writeJSON writes v indented to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
