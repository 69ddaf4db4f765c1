package loop_test

// End-to-end tests of Protocol V2 (docs/protocol.md), written to
// the contract and not to the implementation: the server runs in-process
// (loop.Start) but is only ever spoken to over loopback sockets, by the
// clients of internal/wstest (coder/websocket with a view of presence, or
// raw frames). Who owns what of a client is said there. Every wait is
// bounded by a deadline; sleeps appear only where a test proves that
// something does NOT happen, and say so.

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"hangoutd/internal/wstest"
	"hangoutd/loop"
)

// testServer is an in-process server with an idempotent shutdown.
type testServer struct {
	*loop.Server
	once    sync.Once
	shutErr error
}

// startServer starts a server on a free loopback port. The defaults are
// test-friendly (fast flushes, timeouts long enough not to interfere); edit
// adjusts them for one test.
func startServer(t testing.TB, edit func(*loop.Config)) *testServer {
	t.Helper()
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2 // more than one loop, so relays cross loops
	cfg.BatchInterval = 10 * time.Millisecond
	cfg.PingInterval = 5 * time.Second
	cfg.IdleTimeout = 20 * time.Second
	cfg.HandshakeTimeout = 5 * time.Second
	cfg.Demo = false
	lw := &logWriter{t: t}
	cfg.Logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if edit != nil {
		edit(&cfg)
	}
	s, err := loop.Start(cfg)
	if err != nil {
		t.Fatalf("loop.Start: %v", err)
	}
	ts := &testServer{Server: s}
	t.Cleanup(func() {
		if err := ts.shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		lw.stop()
	})
	return ts
}

func (s *testServer) shutdown() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Wait)
		defer cancel()
		s.shutErr = s.Shutdown(ctx)
	})
	return s.shutErr
}

func (s *testServer) url(path string) string { return "ws://" + s.Addr() + path }

// logWriter forwards server logs to t.Log until the test ends (t.Log after
// the end of a test panics).
type logWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log("server: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// connect dials srv, reads and checks the welcome, and returns the client.
func connect(t testing.TB, srv *testServer, name string, opts ...wstest.Option) *wstest.Client {
	t.Helper()
	return wstest.Connect(t, srv.url("/"), name, opts...)
}
