package main

// A server under test may not log an error nobody expected: an ERROR line
// is a bug even when every client got what it wanted. Every server the
// tests here start (the binary by e2eStart, in-process ones by
// startAdminServer) keeps its log in a logLines, which fails the test in
// cleanup for each ERROR line (or a panic) that the test did not declare
// with expectError.
//
// Ownership: a logLines is written by the server's logging goroutines (or
// the goroutine draining the binary's stderr) and read by the test, all
// under its mutex.

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

type logLines struct {
	mu       sync.Mutex
	lines    []string
	expected []*regexp.Regexp
}

// Write takes whole lines, as slog's handlers write them: one record per
// call.
func (l *logLines) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		l.add(line)
	}
	return len(b), nil
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// contains reports whether a line holds s.
func (l *logLines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// expectError declares that ERROR lines matching re are part of the test.
func (l *logLines) expectError(re string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expected = append(l.expected, regexp.MustCompile(re))
}

// errorLineRE matches what no server may print unasked: an ERROR record of
// slog's text handler, and the start of a panic or a runtime fatal error.
var errorLineRE = regexp.MustCompile(`(^|\s)level=ERROR(\s|$)|^panic: |^fatal error: `)

// unexpected returns the error lines no expectError matches.
func (l *logLines) unexpected() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if !errorLineRE.MatchString(line) {
			continue
		}
		declared := false
		for _, re := range l.expected {
			declared = declared || re.MatchString(line)
		}
		if !declared {
			out = append(out, line)
		}
	}
	return out
}

// check fails t once for every unexpected error line, with the whole log.
func (l *logLines) check(t *testing.T, who string) {
	t.Helper()
	if bad := l.unexpected(); len(bad) > 0 {
		t.Errorf("%s logged %d unexpected error line(s):\n%s\nthe whole log:\n%s", who, len(bad), strings.Join(bad, "\n"), l.String())
	}
}

// The checker itself: which lines count as errors, and what a declaration
// lets through.
func TestLogLinesUnexpected(t *testing.T) {
	var l logLines
	l.Write([]byte(`time=2026-12-01T00:00:00Z level=INFO msg=listening addr=127.0.0.1:1 note="level=ERROR in a value"` + "\n"))
	l.Write([]byte("time=2026-12-01T00:00:00Z level=WARN msg=\"open-file limit\"\n"))
	l.Write([]byte("time=2026-12-01T00:00:00Z level=ERROR msg=\"admin listener stopped\" err=x\n"))
	l.Write([]byte("time=2026-12-01T00:00:00Z level=ERROR msg=\"something else\"\npanic: boom\n"))
	got := strings.Join(l.unexpected(), "|")
	want := `time=2026-12-01T00:00:00Z level=ERROR msg="admin listener stopped" err=x|` +
		`time=2026-12-01T00:00:00Z level=ERROR msg="something else"|panic: boom`
	if got != want {
		t.Errorf("unexpected lines:\n%s\nwant:\n%s", got, want)
	}
	l.expectError(`msg="admin listener stopped"`)
	l.expectError(`^panic: boom$`)
	if got := l.unexpected(); len(got) != 1 || !strings.Contains(got[0], "something else") {
		t.Errorf("after declaring two: %q, want only the undeclared line", got)
	}
}
