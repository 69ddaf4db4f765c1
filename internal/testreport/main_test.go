package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTestJSON runs `go test -json` on a throwaway module holding the given
// test file and returns what it printed.
func goTestJSON(t *testing.T, testFile string) []byte {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module sample\n\ngo 1.22\n")
	write("sample_test.go", testFile)
	cmd := exec.Command("go", "test", "-json", "-count=1", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, _ := cmd.Output() // a failing test exits 1; the stream is what counts
	if len(out) == 0 {
		t.Fatal("go test -json printed nothing")
	}
	return out
}

func TestReportListsSkipsAndFailures(t *testing.T) {
	stream := goTestJSON(t, `package sample

import "testing"

func TestPasses(t *testing.T) { t.Log("quiet on success") }
func TestSkips(t *testing.T) { t.Skip("no Chromium here") }
func TestFails(t *testing.T) { t.Log("what led up to it"); t.Fatal("it broke") }
`)
	var out bytes.Buffer
	code := report(bytes.NewReader(stream), &out)
	got := out.String()
	if code != 1 {
		t.Errorf("exit code %d with a failing test, want 1", code)
	}
	for _, want := range []string{
		"1 skipped:", "sample TestSkips: sample_test.go:6: no Chromium here",
		"what led up to it", "it broke", "1 failed:", "sample TestFails", "FAIL\tsample",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet on success") {
		t.Errorf("report shows a passing test's log:\n%s", got)
	}
}

func TestReportPassesCleanRun(t *testing.T) {
	stream := goTestJSON(t, `package sample

import "testing"

func TestPasses(t *testing.T) {}
`)
	var out bytes.Buffer
	if code := report(bytes.NewReader(stream), &out); code != 0 {
		t.Errorf("exit code %d on a clean run, want 0:\n%s", code, out.String())
	}
	if got := out.String(); !strings.Contains(got, "ok  \tsample") || strings.Contains(got, "skipped") {
		t.Errorf("clean run reported as:\n%s", got)
	}
}

func TestReportFailsOnBuildError(t *testing.T) {
	stream := goTestJSON(t, `package sample

func broken( {
`)
	var out bytes.Buffer
	if code := report(bytes.NewReader(stream), &out); code != 1 {
		t.Errorf("exit code %d on a build failure, want 1:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "sample_test.go") {
		t.Errorf("build error not shown:\n%s", out.String())
	}
}
