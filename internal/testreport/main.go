// Command testreport reads `go test -json` on standard input and prints
// what a person running the suite needs: each package's result line, the
// whole output of every test that failed, and at the end the tests that
// were skipped and why, which plain `go test` hides unless -v is given.
//
// It exits 1 when any test or package failed or a package did not build,
// so `go test -json ./... | testreport` can stand in for `go test ./...`
// (run it under pipefail so that go test's own failures count too).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ pkg, test, why string }

func main() {
	os.Exit(report(os.Stdin, os.Stdout))
}

func report(in io.Reader, out io.Writer) int {
	var (
		outputs = map[string][]string{} // package + test → its output so far
		skips   []skip
		failed  []string
		bad     bool
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil {
			// Not JSON: go test's own complaints (a bad flag, a vet
			// failure) pass through as they are.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "build-fail":
			bad = true
		case "output":
			if e.Test == "" {
				// The package's ok/FAIL line, a panic, the shuffle seed;
				// not the bare PASS that -json adds before ok.
				if e.Output != "PASS\n" {
					fmt.Fprint(out, e.Output)
				}
				continue
			}
			outputs[key] = append(outputs[key], e.Output)
		case "pass":
			delete(outputs, key)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{e.Package, e.Test, skipReason(outputs[key])})
			}
			delete(outputs, key)
		case "fail":
			bad = true
			if e.Test == "" {
				continue
			}
			failed = append(failed, e.Package+" "+e.Test)
			for _, o := range outputs[key] {
				fmt.Fprint(out, o)
			}
			delete(outputs, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testreport: reading go test's output: %v\n", err)
		bad = true
	}
	// Tests still running when the stream ended (a timeout's panic kills
	// the binary before they end) show what they printed.
	var unfinished []string
	for key := range outputs {
		unfinished = append(unfinished, key)
	}
	sort.Strings(unfinished)
	for _, key := range unfinished {
		if strings.HasSuffix(key, " ") {
			continue
		}
		fmt.Fprintf(out, "\n--- unfinished: %s\n", key)
		for _, o := range outputs[key] {
			fmt.Fprint(out, o)
		}
	}

	if len(skips) > 0 {
		fmt.Fprintf(out, "\n%d skipped:\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(out, "  %s %s: %s\n", s.pkg, s.test, s.why)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(out, "\n%d failed:\n", len(failed))
		for _, f := range failed {
			fmt.Fprintf(out, "  %s\n", f)
		}
	}
	if bad {
		return 1
	}
	return 0
}

// skipReason is the last line a skipped test logged before it skipped,
// which is what t.Skip's arguments print.
func skipReason(output []string) string {
	for i := len(output) - 1; i >= 0; i-- {
		l := strings.TrimSpace(output[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return l
	}
	return "(no reason given)"
}
