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
	"io"
	"log/slog"
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
// adjusts them for one test, and opts the server's log. A record the server
// logs at ERROR fails the test unless allowErrors says the test expects it.
func startServer(t testing.TB, edit func(*loop.Config), opts ...logOption) *testServer {
	t.Helper()
	var lo wstest.LogOptions
	for _, o := range opts {
		o(&lo)
	}
	cfg := loop.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 2 // more than one loop, so relays cross loops
	cfg.BatchInterval = 10 * time.Millisecond
	cfg.PingInterval = 5 * time.Second
	cfg.IdleTimeout = 20 * time.Second
	cfg.HandshakeTimeout = 5 * time.Second
	cfg.Demo = false
	log := wstest.ServerLogger(t, lo) // before the server: its cleanup runs after the shutdown
	cfg.Logger = log
	if edit != nil {
		edit(&cfg)
	}
	if cfg.Logger != log {
		t.Fatalf("a test sets the server's log with logTo and logLevel: a logger of its own would let errors pass")
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
	})
	return ts
}

// logOption adjusts a test server's log.
type logOption func(*wstest.LogOptions)

// logTo sends the server's log lines to w instead of the test's log.
func logTo(w io.Writer) logOption { return func(o *wstest.LogOptions) { o.To = w } }

// logLevel sets the lowest level the server logs (info otherwise).
func logLevel(l slog.Level) logOption { return func(o *wstest.LogOptions) { o.Level = l } }

// allowErrors is for a test that makes the server log an error on purpose.
func allowErrors() logOption { return func(o *wstest.LogOptions) { o.AllowErrors = true } }

func (s *testServer) shutdown() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Wait)
		defer cancel()
		s.shutErr = s.Shutdown(ctx)
	})
	return s.shutErr
}

func (s *testServer) url(path string) string { return "ws://" + s.Addr() + path }

// connect dials srv, reads and checks the welcome, and returns the client.
func connect(t testing.TB, srv *testServer, name string, opts ...wstest.Option) *wstest.Client {
	t.Helper()
	return wstest.Connect(t, srv.url("/"), name, opts...)
}
