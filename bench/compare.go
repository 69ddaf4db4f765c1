package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// Report is one standard run: every scenario's result plus where and when.
type Report struct {
	Date         string    `json:"date"`
	Commit       string    `json:"commit"`
	GoVersion    string    `json:"go_version"`
	CPUs         int       `json:"cpus"`
	Scale        float64   `json:"scale"` // client counts were multiplied by this
	Results      []*Result `json:"results"`
	ComparedWith string    `json:"compared_with,omitempty"`
	Threshold    float64   `json:"threshold"`
}

// scaleOf is the scale a report ran at. Reports written before the field
// existed ran at scale 1 when their steps' names match their client
// counts; otherwise their scale is unknown (0), and they compare with
// nothing.
func (rep *Report) scaleOf() float64 {
	if rep.Scale > 0 {
		return rep.Scale
	}
	for _, r := range rep.Results {
		parts := strings.SplitN(r.Name, "-", 3)
		n, ok := r.Params["n"].(float64)
		if len(parts) < 2 || !ok || parts[1] != strconv.Itoa(int(n)) {
			return 0
		}
	}
	return 1
}

// comparable says why two reports' figures cannot be compared, or "".
func comparable(cur, prev *Report) string {
	a, b := cur.scaleOf(), prev.scaleOf()
	switch {
	case b == 0:
		return "its scale is unknown (its step names do not match its client counts)"
	case a != b:
		return fmt.Sprintf("it ran at scale %g, this run at scale %g", b, a)
	}
	return ""
}

// compareReports marks every figure of cur that moved by more than
// threshold (0.10 = 10%) against the same figure of the same-named result
// in prev, and returns how many it marked. Previous values are kept in
// prevValues for the Markdown table. Reports of different scales are not
// compared: their figures differ by design.
func compareReports(cur, prev *Report, threshold float64) (marked int, prevValues map[string]float64, err error) {
	if why := comparable(cur, prev); why != "" {
		return 0, nil, errors.New("not comparable: " + why)
	}
	prevValues = map[string]float64{}
	old := map[string]*Result{}
	for _, r := range prev.Results {
		old[r.Name] = r
	}
	for _, r := range cur.Results {
		o := old[r.Name]
		if o == nil {
			continue
		}
		for i := range r.Figures {
			f := &r.Figures[i]
			pv, ok := o.Get(f.Name)
			if !ok {
				continue
			}
			prevValues[r.Name+"/"+f.Name] = pv
			if m := moveMark(pv, f.Value, threshold); m != "" {
				f.Mark = m
				marked++
			}
		}
	}
	return marked, prevValues, nil
}

// moveMark describes a move from a to b larger than threshold, or "".
func moveMark(a, b, threshold float64) string {
	if a == b {
		return ""
	}
	if a == 0 {
		return "** new (was 0)"
	}
	ch := (b - a) / math.Abs(a)
	if math.Abs(ch) <= threshold {
		return ""
	}
	return fmt.Sprintf("** %+.1f%%", 100*ch)
}

// baseline finds what a run named name (at scale) compares with: the
// newest report in dir that sorts before name (names start with the date)
// and ran at the same scale. Newer ones of another scale, or that cannot
// be read, are passed over, each with the reason in skipped.
func baseline(dir, name string, scale float64) (path string, rep *Report, skipped []string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Sort(sort.Reverse(sort.StringSlice(files)))
	cur := &Report{Scale: scale}
	for _, f := range files {
		if filepath.Base(f) >= name {
			continue
		}
		prev, err := readReport(f)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		if why := comparable(cur, prev); why != "" {
			skipped = append(skipped, fmt.Sprintf("%s: %s", f, why))
			continue
		}
		return f, prev, skipped
	}
	return "", nil, skipped
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &r, nil
}

// writeMarkdown writes the report as one table per scenario; moved
// figures carry their mark and the previous value.
func writeMarkdown(w io.Writer, rep *Report, prevValues map[string]float64) {
	fmt.Fprintf(w, "# hangoutd bench standard: %s, commit %s", rep.Date, rep.Commit)
	if rep.scaleOf() != 1 {
		fmt.Fprintf(w, ", scale %g", rep.scaleOf())
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintf(w, "%s, %d CPUs, scale %g", rep.GoVersion, rep.CPUs, rep.scaleOf())
	if rep.scaleOf() != 1 {
		fmt.Fprint(w, " (client counts multiplied by it: not comparable with full-size runs)")
	}
	fmt.Fprint(w, ".")
	if rep.ComparedWith != "" {
		fmt.Fprintf(w, " Compared with `%s`; `**` marks a move of more than %.0f%%.", rep.ComparedWith, 100*rep.Threshold)
	}
	fmt.Fprint(w, "\n\n")
	for _, r := range rep.Results {
		status := "ok"
		if !r.OK {
			status = "SERVER MISBEHAVED"
		}
		fmt.Fprintf(w, "## %s (%s): %s\n\n%s\n\n", r.Name, r.Scenario, status, paramString(r.Params))
		fmt.Fprintln(w, "| figure | value | unit | previous | move |")
		fmt.Fprintln(w, "| --- | ---: | --- | ---: | --- |")
		for _, f := range r.Figures {
			prev := ""
			if pv, ok := prevValues[r.Name+"/"+f.Name]; ok {
				prev = formatValue(pv)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", f.Name, formatValue(f.Value), f.Unit, prev, f.Mark)
		}
		if len(r.Goals) > 0 {
			fmt.Fprintln(w)
			for _, g := range r.Goals {
				fmt.Fprintf(w, "- goal: %s %s (want %s): **%s**\n", g.Name, g.Got, g.Want, g.verdict())
			}
		}
		if len(r.Failures)+len(r.Warnings)+len(r.Notes) > 0 {
			fmt.Fprintln(w)
			for _, f := range r.Failures {
				fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(f, "\n", " "))
			}
			for _, f := range r.Warnings {
				fmt.Fprintf(w, "- warning: %s\n", strings.ReplaceAll(f, "\n", " "))
			}
			for _, f := range r.Notes {
				fmt.Fprintf(w, "- note: %s\n", strings.ReplaceAll(f, "\n", " "))
			}
		}
		fmt.Fprintln(w)
	}
}
