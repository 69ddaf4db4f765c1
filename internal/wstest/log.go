package wstest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// LogOptions adjust ServerLogger.
type LogOptions struct {
	// Level is the lowest level logged (the zero value is info).
	Level slog.Level
	// To receives the lines instead of the test's log, for a test that
	// reads them.
	To io.Writer
	// AllowErrors is for a test that makes the server log an error on
	// purpose; it must say why where it sets this.
	AllowErrors bool
}

// ServerLogger returns a logger for a server under test. Its text lines go
// to the test's log (or to o.To), and every record at ERROR or above fails
// the test with its line: a server that logs an error has a bug, unless the
// test expects the error and says so with AllowErrors. A log nobody reads
// would let such a bug pass.
//
// Create it before the server: its cleanup, which stops it, must run after
// the server's shutdown (t.Log after the end of a test panics; lines that
// come later are dropped). Records may come from any goroutine.
func ServerLogger(t testing.TB, o LogOptions) *slog.Logger {
	s := &serverLog{t: t, allow: o.AllowErrors, to: o.To}
	t.Cleanup(s.stop)
	return slog.New(failOnError{slog.NewTextHandler(s, &slog.HandlerOptions{Level: o.Level}), s})
}

// serverLog is where a ServerLogger's lines go.
type serverLog struct {
	t     testing.TB
	allow bool
	to    io.Writer

	mu   sync.Mutex
	done bool
}

func (s *serverLog) Write(p []byte) (int, error) {
	if s.to != nil {
		return s.to.Write(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.t.Log("server: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// errorf fails the test, unless it has ended.
func (s *serverLog) errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.t.Errorf(format, args...)
	}
}

func (s *serverLog) stop() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// failOnError hands records to a handler and fails the test for those at
// ERROR and above.
type failOnError struct {
	slog.Handler
	log *serverLog
}

func (h failOnError) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && !h.log.allow {
		var line bytes.Buffer
		_ = slog.NewTextHandler(&line, nil).Handle(ctx, r)
		h.log.errorf("server logged an error: %s", strings.TrimRight(line.String(), "\n"))
	}
	return h.Handler.Handle(ctx, r)
}

func (h failOnError) WithAttrs(as []slog.Attr) slog.Handler {
	return failOnError{h.Handler.WithAttrs(as), h.log}
}

func (h failOnError) WithGroup(name string) slog.Handler {
	return failOnError{h.Handler.WithGroup(name), h.log}
}
