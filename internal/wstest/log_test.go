package wstest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// recordingTB stands in for a test: it records what a ServerLogger makes of
// the test instead of failing the real one.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	logs     []string
	cleanups []func()
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Log(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprint(args...))
}

func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recordingTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// A record at ERROR fails the test with its line, also through a logger
// with attributes; lower levels only log; AllowErrors logs errors without
// failing; nothing reaches the test after its end.
func TestServerLoggerFailsOnError(t *testing.T) {
	rec := &recordingTB{TB: t}
	log := ServerLogger(rec, LogOptions{})
	log.Debug("below the level")
	log.Info("info line", "n", 1)
	log.Warn("warn line")
	if len(rec.errs) != 0 || len(rec.logs) != 2 {
		t.Fatalf("info and warn: errors %q, logs %q; want no error and 2 lines", rec.errs, rec.logs)
	}
	log.With("conn", 7).Error("broken", "err", "boom")
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], `msg=broken err=boom`) || len(rec.logs) != 3 {
		t.Fatalf("after an error: errors %q, logs %q; want the line as one error and logged", rec.errs, rec.logs)
	}
	rec.end()
	log.Error("after the end")
	if len(rec.errs) != 1 || len(rec.logs) != 3 {
		t.Fatalf("after the end: errors %q, logs %q; want nothing more", rec.errs, rec.logs)
	}

	var buf bytes.Buffer
	rec = &recordingTB{TB: t}
	log = ServerLogger(rec, LogOptions{To: &buf, AllowErrors: true})
	log.Error("expected", "why", "the test caused it")
	if len(rec.errs) != 0 || len(rec.logs) != 0 || !strings.Contains(buf.String(), "level=ERROR msg=expected") {
		t.Fatalf("AllowErrors, To: errors %q, logs %q, written %q; want the line written and nothing else", rec.errs, rec.logs, buf.String())
	}
}
